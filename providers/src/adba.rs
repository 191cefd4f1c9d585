//! Active Directory-based activation: the directory of `[active_directory]` as the plan entry
//! `active_directory`, which runs after the `via` hosts. Its objects are matched to the declared
//! ones by the last five characters of their keys; an object no declared key matches is shown,
//! and deleted by its exact DN only with `exclusive = true`. A declared object that is missing
//! is shown with what creates it: only Windows' licensing service can, on the `via` host.

use kmsconf_engine::plan::HostPlan;
use kmsconf_model::adba::{self, ActivationObject, AdState};
use kmsconf_model::config::{AdActivation, AdConfig, AdObjectConfig, TargetSpec, AD_PLAN_HOST};
use kmsconf_model::keys::ConfirmationId;
use kmsconf_model::ops::PlanOp;
use kmsconf_model::{EntryState, KmsHostPlan};

use crate::contract::ChangeSpec;

/// Plans the directory as the entry `active_directory` against what `target` read.
pub fn plan_ad(cfg: &AdConfig, target: TargetSpec, state: AdState) -> KmsHostPlan {
    let (declared, unread) = adba::declared(cfg);
    let diff = adba::diff(&declared, &state.objects);
    let mut notices = Vec::new();
    if let Some(found) = &state.located {
        notices.push(format!("LDAP server `{}` was {found}", state.server));
    }
    if !state.container {
        notices.push(format!("the container `{}` does not exist on LDAP server `{}`: no activation object can be created until the Windows Server 2012 forest preparation creates it", state.container_dn(), state.server));
    }
    for name in &unread {
        notices.push(format!("the host key of activation object `{name}` cannot be read now, so its object cannot be looked for"));
    }
    let mut changes = Vec::new();
    for o in &diff.undeclared {
        if cfg.exclusive && unread.is_empty() {
            let before = crate::shown::activation_object(o);
            let spec = ChangeSpec::new(format!("activation_objects/{}", o.name), before)
                .note(format!("no declared host key ends `{}`", o.partial_key));
            changes.push(spec.into_change(PlanOp::DeleteActivationObject {
                dn: o.dn.clone(),
                name: o.name.clone(),
                partial_key: o.partial_key.clone(),
            }));
        } else {
            notices.push(format!("activation object `{}` (key ending {}, SKU {}) is for no declared host key, left alone (`exclusive = true` would delete it by its DN)", o.dn, o.partial_key, o.sku_id));
        }
    }
    let mut depends_on: Vec<String> = cfg.objects.iter().map(|o| o.via.clone()).collect();
    depends_on.sort();
    depends_on.dedup();
    HostPlan {
        name: AD_PLAN_HOST.to_string(),
        target,
        depends_on,
        created: false,
        observed: EntryState::ActiveDirectory(state),
        changes,
        notices,
    }
}

fn partial_of<'a>(declared: &'a [(String, String)], name: &str) -> &'a str {
    declared
        .iter()
        .find(|(n, _)| n == name)
        .map_or("?????", |(_, p)| p.as_str())
}

/// Plans each missing activation object as a change of its `via` host, whose licensing service
/// creates it: online (`DoActiveDirectoryOnlineActivation`), or by phone from the confirmation
/// ID (`DepositActiveDirectoryOfflineActivationConfirmation`); a phone object without one yet is
/// pending, and its `via` host shows the forest's installation ID ([`pending_note`]). The
/// directory's entry already runs after its `via` hosts. A `via` host not in this plan (not
/// selected, or it could not be planned) leaves a notice on the directory's entry instead.
pub fn annotate(plan: &mut kmsconf_model::KmsPlan, config: &kmsconf_model::config::Config) {
    let Some(cfg) = config.active_directory.as_ref() else {
        return;
    };
    let Some(ad) = plan.hosts.iter().position(|h| h.name == AD_PLAN_HOST) else {
        return;
    };
    let EntryState::ActiveDirectory(state) = &plan.hosts[ad].observed else {
        return;
    };
    let (declared, _) = adba::declared(cfg);
    let diff = adba::diff(&declared, &state.objects);
    let mut notices = Vec::new();
    for name in &diff.missing {
        let Some(o) = cfg.objects.iter().find(|o| &o.name == name) else {
            continue;
        };
        let partial = partial_of(&declared, name).to_string();
        let Some(via) = plan.hosts.iter_mut().find(|h| h.name == o.via) else {
            notices.push(format!("activation object `{name}` (key ending {partial}) does not exist, and its `via` host `{}` is not in this plan, so it is not created: plan `{}` with it", o.via, o.via));
            continue;
        };
        let (op, note) = match o.activation {
            AdActivation::Online => (
                PlanOp::CreateActivationObject {
                    name: name.clone(),
                    key: o.host_key.clone(),
                    partial: partial.clone(),
                },
                format!("no activation object in the forest has a key ending `{partial}`"),
            ),
            AdActivation::Phone => by_phone(o, partial),
        };
        let spec = ChangeSpec::new(
            format!("activation_objects/{name}"),
            serde_json::Value::Null,
        )
        .note(note);
        via.changes.push(spec.into_change(op));
    }
    plan.hosts[ad].notices.extend(notices);
}

/// A missing object activated by phone: created from its confirmation ID when the variable or
/// file holds one (its form checked now, so a typo shows in the plan), else pending. An empty
/// variable or file means "not phoned yet", as for products.
fn by_phone(o: &AdObjectConfig, partial: String) -> (PlanOp, String) {
    let name = o.name.clone();
    let key = o.host_key.clone();
    let Some(cid) = o
        .confirmation_id
        .as_ref()
        .filter(|c| c.source.is_available())
    else {
        let note = pending_note(o, None);
        let op = PlanOp::ShowActivationObjectInstallationId { name, key, partial };
        return (op, note);
    };
    let from = cid.source.describe();
    let what = format!("the confirmation ID of activation object `{name}`");
    let checked = cid
        .resolve(&what)
        .map_err(|e| e.to_string())
        .and_then(|s| ConfirmationId::parse(&s).map_err(|e| e.to_string()));
    let note = match checked {
        Ok(_) => format!("no activation object in the forest has a key ending `{partial}`: created from the confirmation ID in {from}"),
        Err(reason) => format!("the confirmation ID in {from} is malformed ({reason}): apply refuses it; enter the one the activation line gave"),
    };
    let op = PlanOp::CreateActivationObjectByPhone {
        name,
        key,
        partial,
        confirmation_id: cid.clone(),
    };
    (op, note)
}

/// Why a `via` host gave no installation ID while planning; the texts are the host's or its
/// connection's own words, shown in the pending note.
#[derive(Debug, thiserror::Error)]
pub enum InstallationIdError {
    /// The operation could not be prepared or sent (a key that does not read, a lost session).
    #[error("{0}")]
    Unsent(Box<dyn std::error::Error + Send + Sync>),
    /// The host refused: its failure message.
    #[error("{0}")]
    Refused(String),
    /// The host answered without an installation ID.
    #[error("the host's answer holds no installation ID: {0}")]
    NoId(String),
    /// The host answered something other than a pending phone activation.
    #[error("the host answered {0}")]
    Unexpected(String),
    #[error("the host gave no answer")]
    NoAnswer,
}

/// The note of a pending phone object: the installation ID its `via` host generated while
/// planning (`generated`: its answer, `None` before it is asked), and where the confirmation ID
/// goes. The installation ID is no secret; the confirmation ID never appears.
pub fn pending_note(
    o: &AdObjectConfig,
    generated: Option<Result<String, InstallationIdError>>,
) -> String {
    let supply = match &o.confirmation_id {
        Some(c) => format!("put the confirmation ID in {}", c.source.describe()),
        None => "set `confirmation_id`".to_string(),
    };
    match generated {
        Some(Ok(iid)) => format!("phone activation pending: call the activation line with installation ID {iid} (host `{}`, `slmgr.vbs /ad-activation-get-iid`), then {supply}", o.via),
        Some(Err(why)) => format!("phone activation pending: host `{}` could not generate the installation ID: {why}; then {supply}", o.via),
        None => format!("phone activation pending: host `{}` generates the installation ID to give the activation line; then {supply}", o.via),
    }
}

/// The installation ID in a host's answer to [`PlanOp::ShowActivationObjectInstallationId`]:
/// the first word of digits in groups (`1234567-…`), as the lab and the agent's read-back show it.
pub fn installation_id_in(message: &str) -> Option<String> {
    message
        .split_whitespace()
        .find(|w| {
            let digits = w.chars().filter(char::is_ascii_digit).count();
            digits >= 20 && w.chars().all(|c| c.is_ascii_digit() || c == '-')
        })
        .map(str::to_string)
}

/// What changed in the directory since a plan was made.
pub fn drift(planned: &AdState, now: &AdState) -> Vec<String> {
    let show = |objects: &[ActivationObject]| {
        let dns: Vec<&str> = objects.iter().map(|o| o.dn.as_str()).collect();
        if dns.is_empty() {
            "(none)".to_string()
        } else {
            dns.join(", ")
        }
    };
    let mut out = Vec::new();
    if planned.objects != now.objects {
        out.push(format!(
            "activation objects: {} -> {}",
            show(&planned.objects),
            show(&now.objects)
        ));
    }
    if planned.container != now.container {
        out.push(format!(
            "container `{}`: {} -> {}",
            now.container_dn(),
            planned.container,
            now.container
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsconf_engine::diagnostic::Location;
    use kmsconf_engine::secret::{DeclaredSecret, SecretSource};

    fn object(name: &str, partial: &str) -> ActivationObject {
        ActivationObject {
            dn: format!("CN={name},CN=Activation Objects"),
            name: name.into(),
            sku_id: "s".into(),
            partial_key: partial.into(),
            pid: String::new(),
        }
    }

    fn here() -> Location {
        Location {
            file: "kmsconf.toml".into(),
            line: 1,
            column: 1,
        }
    }

    fn config(exclusive: bool) -> AdConfig {
        let key = DeclaredSecret {
            source: SecretSource::Literal(kmsconf_engine::secret::Secret::new(
                "BCDFG-HJKMP-QRTVW-XY234-6789B",
            )),
            declared_at: here(),
        };
        AdConfig {
            server: None,
            principal: None,
            keytab: None,
            exclusive,
            objects: vec![kmsconf_model::config::AdObjectConfig {
                name: "WS".into(),
                host_key: key,
                via: "kms01".into(),
                activation: AdActivation::Online,
                confirmation_id: None,
                declared_at: here(),
            }],
        }
    }

    fn state(objects: Vec<ActivationObject>) -> AdState {
        AdState {
            container: true,
            schema_class: true,
            objects,
            ..AdState::default()
        }
    }

    fn spec() -> TargetSpec {
        TargetSpec::ActiveDirectory {
            server: Some("dc1:389".into()),
            dns: None,
            principal: None,
            keytab: None,
        }
    }

    #[test]
    fn an_undeclared_object_is_deleted_only_when_exclusive_and_a_missing_one_is_shown() {
        let objects = vec![object("Old", "QRTVW")];
        let kept = plan_ad(&config(false), spec(), state(objects.clone()));
        assert!(kept.changes.is_empty());
        let said = kept.notices.join("\n");
        assert!(
            said.contains("left alone") && said.contains("CN=Old"),
            "{said}"
        );
        assert!(
            !said.contains("WS"),
            "an online object is created by its via host: {said}"
        );
        assert!(!said.contains("BCDFG"), "{said}");
        assert_eq!(kept.depends_on, ["kms01"]);

        let gone = plan_ad(&config(true), spec(), state(objects));
        assert_eq!(gone.changes.len(), 1);
        assert!(
            matches!(&gone.changes[0].operation, PlanOp::DeleteActivationObject { dn, .. } if dn == "CN=Old,CN=Activation Objects")
        );
        let present = plan_ad(&config(true), spec(), state(vec![object("WS", "6789B")]));
        assert!(
            present.changes.is_empty() && present.notices.is_empty(),
            "{:?}",
            present.notices
        );
    }

    /// A config of one lab host `kms01` and two declared objects: `WS` online, `Phone` by phone.
    fn full_config() -> kmsconf_model::config::Config {
        let text = "[active_directory]\nserver = \"ldap://dc1\"\n\n[[active_directory.activation_objects]]\nname = \"WS\"\nhost_key = \"BCDFG-HJKMP-QRTVW-XY234-6789B\"\nvia = \"kms01\"\n\n[[active_directory.activation_objects]]\nname = \"Phone\"\nhost_key = \"VK7JG-NPHTM-C97JM-9MPGT-3V66T\"\nvia = \"kms01\"\nactivation = \"phone\"\nconfirmation_id = { env = \"KMSCONF_TEST_ADBA_CID_UNSET\" }\n\n[hosts.kms01]\ntarget = \"lab:kms01.json\"\n";
        kmsconf_model::config::Config::parse(std::path::Path::new("kmsconf.toml"), text)
            .expect("config")
    }

    fn kms01() -> KmsHostPlan {
        HostPlan {
            name: "kms01".into(),
            target: TargetSpec::Lab {
                path: "kms01.json".into(),
            },
            depends_on: Vec::new(),
            created: false,
            observed: EntryState::KmsHost(kmsconf_model::state::HostState::fresh_windows_server(
                "KMS01",
            )),
            changes: Vec::new(),
            notices: Vec::new(),
        }
    }

    #[test]
    fn a_missing_object_is_a_change_of_its_via_host_online_or_pending_by_phone() {
        let config = full_config();
        let cfg = config.active_directory.as_ref().expect("ad");
        let ad = plan_ad(cfg, spec(), state(Vec::new()));
        assert!(ad.notices.is_empty(), "{:?}", ad.notices);
        let mut plan =
            kmsconf_model::KmsPlan::new("kmsconf.toml".into(), ".".into(), vec![kms01(), ad]);
        annotate(&mut plan, &config);
        let host = &plan.hosts[0];
        assert_eq!(host.changes.len(), 2, "{:?}", host.changes);
        let change = &host.changes[0];
        assert_eq!(change.address, "activation_objects/WS");
        assert!(
            matches!(&change.operation, PlanOp::CreateActivationObject { name, partial, .. } if name == "WS" && partial == "6789B")
        );
        assert_eq!(
            change.equivalent.as_deref(),
            Some("slmgr.vbs /ad-activation-online *****-*****-*****-*****-6789B \"WS\"")
        );
        // the phone object's confirmation ID variable is unset: pending, with the commands
        let phone = &host.changes[1];
        assert_eq!(phone.address, "activation_objects/Phone");
        assert!(
            matches!(&phone.operation, PlanOp::ShowActivationObjectInstallationId { name, partial, .. } if name == "Phone" && partial == "3V66T")
        );
        assert_eq!(
            phone.equivalent.as_deref(),
            Some("slmgr.vbs /ad-activation-get-iid *****-*****-*****-*****-3V66T")
        );
        let note = phone.note.as_deref().unwrap_or_default();
        assert!(
            note.contains("phone activation pending")
                && note.contains("env `KMSCONF_TEST_ADBA_CID_UNSET`")
                && !note.contains("VK7JG"),
            "{note}"
        );

        // the via host not in the plan: the directory's entry says so, nothing is created
        let ad = plan_ad(cfg, spec(), state(Vec::new()));
        let mut plan = kmsconf_model::KmsPlan::new("kmsconf.toml".into(), ".".into(), vec![ad]);
        annotate(&mut plan, &config);
        let said = plan.hosts[0].notices.join("\n");
        assert!(
            said.contains("`WS`") && said.contains("is not in this plan"),
            "{said}"
        );
        assert!(plan.hosts[0].changes.is_empty());
    }

    #[test]
    fn a_server_found_by_srv_records_is_said_first() {
        let mut found = state(Vec::new());
        found.server = "dc1.corp.example:389".into();
        found.located = Some(adba::DcLocation {
            srv_name: "_ldap._tcp.dc._msdcs.corp.example".into(),
            dns_server: "127.0.0.1:5353".into(),
        });
        let plan = plan_ad(&config(false), spec(), found);
        assert_eq!(
            plan.notices[0],
            "LDAP server `dc1.corp.example:389` was found by the `_ldap._tcp.dc._msdcs.corp.example` SRV records on DNS server `127.0.0.1:5353`"
        );
    }

    fn phone_object(cid: Option<&str>) -> AdObjectConfig {
        let mut o = config(false).objects.remove(0);
        o.activation = AdActivation::Phone;
        o.confirmation_id = cid.map(|c| DeclaredSecret {
            source: SecretSource::Literal(kmsconf_engine::secret::Secret::new(c)),
            declared_at: here(),
        });
        o
    }

    #[test]
    fn a_confirmation_id_makes_a_phone_object_a_creation_and_a_malformed_one_says_so() {
        let cid = "123450-".repeat(7) + "123450";
        let (op, note) = by_phone(&phone_object(Some(&cid)), "6789B".into());
        assert!(
            matches!(&op, PlanOp::CreateActivationObjectByPhone { name, partial, .. } if name == "WS" && partial == "6789B"),
            "{op:?}"
        );
        assert!(
            note.contains("created from the confirmation ID") && !note.contains(&cid),
            "{note}"
        );
        let shown = crate::shown::describe(&op, &serde_json::Value::Null);
        assert_eq!(
            shown.equivalent,
            "slmgr.vbs /ad-activation-apply-cid *****-*****-*****-*****-6789B <confirmation ID> \"WS\""
        );
        // a literal secret cannot go into a plan file
        assert!(op.literal_secret().is_some());

        let (op, note) = by_phone(&phone_object(Some("12345")), "6789B".into());
        assert!(matches!(op, PlanOp::CreateActivationObjectByPhone { .. }));
        assert!(
            note.contains("is malformed") && !note.contains("12345"),
            "{note}"
        );
    }

    #[test]
    fn the_pending_note_shows_the_installation_id_and_never_the_confirmation_id() {
        let o = phone_object(None);
        let iid = "1234567-".repeat(8) + "1234567";
        let answer = format!(
            "installation ID for activation object `WS`: {iid}\n  call the activation line"
        );
        assert_eq!(installation_id_in(&answer).as_deref(), Some(iid.as_str()));
        assert_eq!(installation_id_in("no ID here: 0x8007"), None);
        let note = pending_note(&o, Some(Ok(iid.clone())));
        assert!(
            note.contains(&iid)
                && note.contains("host `kms01`")
                && note.contains("set `confirmation_id`"),
            "{note}"
        );
        let failed = pending_note(
            &o,
            Some(Err(InstallationIdError::Refused("0xC004F074 no".into()))),
        );
        assert!(
            failed.contains("could not generate") && failed.contains("0xC004F074"),
            "{failed}"
        );
    }
}
