//! Retirement: the changes that turn a host declared `state = "retired"` from a KMS host back
//! into a KMS client that neither publishes itself nor listens.
//!
//! In the order Windows allows: the KMS settings first (DNS publishing off, the publish list
//! cleared, the listening port cleared: Windows takes the first and the last only while a KMS
//! host key is installed), then Windows' KMS host key replaced by the edition's public KMS client
//! key (GVLK) in one `slmgr.vbs /ipk`, which "silently replaces" an installed key (so no failed
//! step leaves Windows without a key), and each Office KMS host key's uninstall by its activation
//! ID (Office has no client key on the host to replace it), then the firewall, then one restart of
//! the Software Protection service. The host's `_vlmcs._tcp` records are removed by the DNS entry
//! ([`crate::dns`]), which this host waits for. Office host license packs stay installed: there
//! is no documented way to uninstall them.

use kmsconf_model::catalog;
use kmsconf_model::config::{HostConfig, ProductId};
use kmsconf_model::ops::{PlanOp, ServiceSetting};
use kmsconf_model::settings::{OnRetire, Setting, SettingValue};
use kmsconf_model::state::{Channel, HostState, ServiceState};
use kmsconf_model::KmsChange;
use serde_json::json;

use crate::contract::{ChangeSpec, Planned, CLIENT_KEY};
use crate::error::PlanError;
use crate::Error;

/// Plans the retirement of `cfg`'s host, observed in `state`, resetting each of `settings` as
/// its row's `on_retire` says.
pub fn plan_retired(
    settings: &'static [Setting],
    cfg: &HostConfig,
    state: &HostState,
) -> Result<Planned, Error> {
    let err = |e: PlanError| e.on(&cfg.name);
    let mut changes = settings_changes(settings, state);
    let settings: Vec<String> = changes.iter().map(|c| c.address.clone()).collect();
    changes.extend(uninstall_changes(state, &settings).map_err(err)?);
    changes.extend(client_key_change(state, &settings).map_err(err)?);
    let keys: Vec<String> = changes
        .iter()
        .filter(|c| c.address.starts_with("products."))
        .map(|c| c.address.clone())
        .collect();
    let firewall = crate::firewall::retire(&state.firewall, &keys);
    let needs_restart = !changes.is_empty() || state.service.restart_pending;
    changes.extend(firewall);
    if needs_restart {
        let mut restart = crate::service::restart_change(&settings, &changes, &[]);
        restart.note = Some("the Software Protection service starts again as a KMS client: no KMS host key, DNS publishing or custom port".into());
        changes.push(restart);
    }
    let mut notices = Vec::new();
    if !state.license_packs.is_empty() {
        let packs: Vec<String> = state
            .license_packs
            .iter()
            .map(|id| catalog::product_name(*id))
            .collect();
        notices.push(format!(
            "retired: the KMS host license packs of {} stay installed (Windows documents no way to remove them); they activate nothing without a KMS host key",
            packs.join(", ")
        ));
    }
    Ok(Planned { changes, notices })
}

/// Each setting reset as its row's `on_retire` says (DNS publishing off, the publish list and the
/// listening port cleared). A setting slmgr.vbs gates on a KMS host key (its row's
/// `needs_kms_host_key`), and the port, whose clear the facts table marks `kms_host_only`, are
/// written only while one is installed: a KMS client neither publishes nor listens.
fn settings_changes(settings: &'static [Setting], state: &HostState) -> Vec<KmsChange> {
    settings
        .iter()
        .filter_map(|row| match &row.on_retire {
            OnRetire::Keep => None,
            OnRetire::Set(value) => setting_change(row, value.clone(), state),
            OnRetire::Clear => clear_change(row, state),
        })
        .collect()
}

/// Setting `row` to `value`, unless it already is or the row is gated on a KMS host key the host
/// does not hold.
fn setting_change(
    row: &'static Setting,
    value: SettingValue,
    state: &HostState,
) -> Option<KmsChange> {
    let desired = ServiceSetting::new(row, value).ok()?;
    if row.needs_kms_host_key && !state.has_kms_host_key() {
        return None;
    }
    let now = desired.current(&state.service);
    (desired != now).then(|| crate::service::setting_change(desired, &now, &[]))
}

/// Clearing `row` (the listening port) where it differs from Windows' default and a KMS host key
/// is installed.
fn clear_change(row: &Setting, state: &HostState) -> Option<KmsChange> {
    let now = state.service.current(row);
    let default = ServiceState::windows_default().current(row);
    (state.has_kms_host_key() && now != default).then(|| clear_port_change(&now))
}

/// `ClearKeyManagementServiceListeningPort`: the one clear Windows has, the port's.
fn clear_port_change(now: &SettingValue) -> KmsChange {
    ChangeSpec::new(crate::contract::PORT, json!(now))
        .note("no slmgr.vbs switch clears the port (`slmgr.vbs /sprt 1688` listens on the same port but writes it); Windows clears it only on a KMS host, so before the key goes")
        .into_change(PlanOp::ClearListeningPort)
}

/// `slmgr.vbs /upk <activation ID>` for every Office product holding a KMS host key, after
/// `deps` (Windows' is replaced by its client key instead).
fn uninstall_changes(state: &HostState, deps: &[String]) -> Result<Vec<KmsChange>, PlanError> {
    let mut changes = Vec::new();
    for (id, p) in state
        .products
        .iter()
        .filter(|(id, p)| **id != ProductId::Windows && p.channel == Channel::KmsHost)
    {
        let Some(activation_id) = p.activation_id.clone() else {
            return Err(PlanError::NoActivationId {
                product: catalog::product_name(*id),
            });
        };
        let partial = p.partial_key.clone().unwrap_or_default();
        let before = crate::shown::key_value(&partial, p.channel);
        let change = ChangeSpec::new(format!("products.{id}.host_key"), before)
            .depends_on_all(deps)
            .into_change(PlanOp::UninstallProductKey {
                product: *id,
                activation_id,
                partial,
            });
        changes.push(change);
    }
    Ok(changes)
}

/// The public KMS client key of the host's edition, when Windows holds a KMS host key (which it
/// replaces) or no key at all (a MAK or retail key is left alone), after `deps`.
fn client_key_change(state: &HostState, deps: &[String]) -> Result<Option<KmsChange>, PlanError> {
    let windows = state.products.get(&ProductId::Windows);
    let channel = windows.map_or(Channel::None, |p| p.channel);
    if !matches!(channel, Channel::KmsHost | Channel::None) {
        return Ok(None);
    }
    let before = windows
        .and_then(|p| {
            Some(crate::shown::key_value(
                p.partial_key.as_deref()?,
                p.channel,
            ))
        })
        .unwrap_or_default();
    let edition = match (state.os_sku, state.os_build) {
        (Some(sku), Some(build)) => catalog::windows_edition(sku, build),
        _ => None,
    };
    let Some(edition) = edition else {
        return Err(PlanError::NoClientKey {
            reported: reported_edition(state),
        });
    };
    let replaces = if before.is_null() {
        ""
    } else {
        ", replacing the KMS host key in one step"
    };
    let change = ChangeSpec::new(CLIENT_KEY, before)
        .depends_on_all(deps)
        .note(format!(
            "the public KMS client setup key of {}{replaces}",
            edition.name
        ))
        .into_change(PlanOp::InstallClientKey {
            product: ProductId::Windows,
            edition: edition.id.clone(),
        });
    Ok(Some(change))
}

/// What the host reported of its edition, in a message: its `OperatingSystemSKU` (with the
/// winnt.h name where the table has it), its build and its caption (the host's own text).
fn reported_edition(state: &HostState) -> String {
    let sku = match state.os_sku {
        Some(n) => match catalog::sku_name(n) {
            Some(name) => format!("`OperatingSystemSKU` {n} ({name})"),
            None => format!("`OperatingSystemSKU` {n}"),
        },
        None => "no `OperatingSystemSKU`".to_string(),
    };
    let build = state
        .os_build
        .map_or_else(|| "no build number".to_string(), |b| format!("build {b}"));
    format!("{sku}, {build} (`{}`)", state.os)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsconf_model::config::Config;
    use kmsconf_model::settings::SETTINGS;
    use kmsconf_model::state::{LicenseStatus, ProductState};
    use kmsconf_model::Action;

    fn retired() -> HostConfig {
        let text = "[hosts.kms01]\ntarget = \"lab:kms01.json\"\nstate = \"retired\"\n";
        let config = Config::parse(std::path::Path::new("kmsconf.toml"), text).expect("config");
        config.hosts["kms01"].clone()
    }

    /// An activated KMS host with an Office 2019 host key beside Windows'.
    fn kms_host() -> HostState {
        let mut s = HostState::fresh_windows_server("KMS01");
        let host_key = |id: &str, partial: &str| ProductState {
            activation_id: Some(id.into()),
            partial_key: Some(partial.into()),
            channel: Channel::KmsHost,
            license_status: LicenseStatus::Licensed,
            ..ProductState::empty()
        };
        s.products.insert(
            ProductId::Windows,
            host_key("11111111-2222-4333-8444-555555555555", "6789B"),
        );
        s.products.insert(
            ProductId::Office2019,
            host_key("70512334-47b4-44db-a233-be5ea33b914c", "RTVWX"),
        );
        s.license_packs.insert(ProductId::Office2019);
        s
    }

    #[test]
    fn windows_key_is_replaced_office_keys_go_by_activation_id_and_packs_stay() {
        let planned = plan_retired(SETTINGS, &retired(), &kms_host()).expect("plan");
        let upk: Vec<&str> = planned
            .changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .filter_map(|c| c.equivalent.as_deref())
            .collect();
        assert_eq!(upk, ["slmgr.vbs /upk 70512334-47b4-44db-a233-be5ea33b914c"]);
        let gvlk = planned
            .changes
            .iter()
            .find(|c| c.address == CLIENT_KEY)
            .expect("the client key");
        assert_eq!(gvlk.action, Action::Update);
        assert_eq!(
            gvlk.before,
            json!({ "partial_key": "6789B", "channel": "kms-host" })
        );
        assert!(
            gvlk.equivalent
                .as_deref()
                .is_some_and(|e| e.starts_with("slmgr.vbs /ipk ")),
            "{gvlk:?}"
        );
        let settings: Vec<&str> = planned
            .changes
            .iter()
            .filter(|c| matches!(c.operation, PlanOp::SetService(_)))
            .map(|c| c.address.as_str())
            .collect();
        assert!(!settings.is_empty());
        for s in &settings {
            assert!(gvlk.depends_on.iter().any(|d| d == s), "{s}: {gvlk:?}");
        }
        assert!(
            planned.notices[0].contains("license packs of Office 2019 stay installed"),
            "{:?}",
            planned.notices
        );
    }

    #[test]
    fn an_edition_without_a_gvlk_and_a_key_without_an_activation_id_are_plan_errors() {
        let mut state = kms_host();
        state.os = "Microsoft Windows Server 2022 Datacenter Evaluation".into();
        state.os_sku = Some(80);
        let e = plan_retired(SETTINGS, &retired(), &state).expect_err("no GVLK");
        assert!(
            e.to_string().contains(
                "the host reports `OperatingSystemSKU` 80, build 20348 (`Microsoft Windows Server 2022 Datacenter Evaluation`), an edition with no KMS client setup key"
            ),
            "{e}"
        );
        state.os_sku = None;
        let e = plan_retired(SETTINGS, &retired(), &state).expect_err("no SKU");
        assert!(
            e.to_string()
                .contains("reports no `OperatingSystemSKU`, build 20348"),
            "{e}"
        );
        let mut state = kms_host();
        if let Some(w) = state.products.get_mut(&ProductId::Office2019) {
            w.activation_id = None;
        }
        let e = plan_retired(SETTINGS, &retired(), &state).expect_err("no activation ID");
        assert!(e.to_string().contains("only by its activation ID"), "{e}");
    }

    /// The edition comes from the SKU and build, whatever language the caption is in.
    #[test]
    fn a_localized_caption_still_gives_the_edition_of_its_sku_and_build() {
        for (caption, sku, build, edition) in [
            (
                "Microsoft Windows 10 Professionnel",
                48,
                19045,
                "windows-pro",
            ),
            ("Microsoft Windows 11 Pro N", 49, 26100, "windows-pro-n"),
            (
                "Microsoft Windows 10 엔터프라이즈",
                4,
                19045,
                "windows-enterprise",
            ),
            (
                "Microsoft Windows Server 2019 Standard",
                7,
                17763,
                "windows-server-2019-standard",
            ),
            (
                "Microsoft Windows 10 Enterprise LTSC",
                125,
                19044,
                "windows-enterprise-ltsc",
            ),
        ] {
            let mut state = kms_host();
            state.os = caption.into();
            state.os_sku = Some(sku);
            state.os_build = Some(build);
            let planned = plan_retired(SETTINGS, &retired(), &state).expect("plan");
            let gvlk = planned
                .changes
                .iter()
                .find(|c| c.address == CLIENT_KEY)
                .expect("the client key");
            assert!(
                matches!(&gvlk.operation, PlanOp::InstallClientKey { edition: e, .. } if e == edition),
                "{caption}: {gvlk:?}"
            );
        }
    }

    #[test]
    fn a_kms_client_with_nothing_left_plans_nothing() {
        let mut state = HostState::fresh_windows_server("KMS01");
        let set = |key| kmsconf_model::settings::find(key).expect("row");
        state
            .service
            .store(set("dns_publishing"), SettingValue::Bool(true));
        state.service.store(set("port"), SettingValue::U16(1689));
        let planned = plan_retired(SETTINGS, &retired(), &state).expect("plan");
        assert!(planned.changes.is_empty(), "{:?}", planned.changes);
    }
}
