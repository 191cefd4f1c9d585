//! Active Directory-based activation: the directory of `[active_directory]` as the plan entry
//! `active_directory`, which runs after the `via` hosts. Its objects are matched to the declared
//! ones by the last five characters of their keys; an object no declared key matches is shown,
//! and deleted by its exact DN only with `exclusive = true`. A declared object that is missing
//! is shown with what creates it: only Windows' licensing service can, on the `via` host.

use kmsconf_engine::plan::HostPlan;
use kmsconf_model::adba::{self, ActivationObject, AdState};
use kmsconf_model::config::{AdActivation, AdConfig, TargetSpec, AD_PLAN_HOST};
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
    notices.extend(missing_notices(cfg, &diff.missing, &declared));
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

/// What is said of each missing object on the entry itself: phone activation, which kmsconf
/// does not run yet, with the commands its `via` host would run. An online one becomes a change
/// of its `via` host ([`annotate`]).
fn missing_notices(
    cfg: &AdConfig,
    missing: &[String],
    declared: &[(String, String)],
) -> Vec<String> {
    let mut out = Vec::new();
    for name in missing {
        let Some(o) = cfg.objects.iter().find(|o| &o.name == name) else {
            continue;
        };
        if o.activation != AdActivation::Phone {
            continue;
        }
        let key = kmsconf_model::keys::masked(partial_of(declared, name));
        out.push(format!("activation object `{name}` does not exist and is declared with `activation = \"phone\"`, which kmsconf does not support yet for activation objects: on host `{}` run `slmgr.vbs /ad-activation-get-iid {key}`, then `slmgr.vbs /ad-activation-apply-cid {key} CID \"{name}\"`", o.via));
    }
    out
}

fn partial_of<'a>(declared: &'a [(String, String)], name: &str) -> &'a str {
    declared
        .iter()
        .find(|(n, _)| n == name)
        .map_or("?????", |(_, p)| p.as_str())
}

/// Plans each missing online activation object as a change of its `via` host, whose licensing
/// service creates it (`DoActiveDirectoryOnlineActivation`); the directory's entry already runs
/// after its `via` hosts. A `via` host not in this plan (not selected, or it could not be
/// planned) leaves a notice on the directory's entry instead.
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
        if o.activation != AdActivation::Online {
            continue;
        }
        let partial = partial_of(&declared, name).to_string();
        let Some(via) = plan.hosts.iter_mut().find(|h| h.name == o.via) else {
            notices.push(format!("activation object `{name}` (key ending {partial}) does not exist, and its `via` host `{}` is not in this plan, so it is not created: plan `{}` with it", o.via, o.via));
            continue;
        };
        let spec = ChangeSpec::new(
            format!("activation_objects/{name}"),
            serde_json::Value::Null,
        )
        .note(format!(
            "no activation object in the forest has a key ending `{partial}`"
        ));
        via.changes
            .push(spec.into_change(PlanOp::CreateActivationObject {
                name: name.clone(),
                key: o.host_key.clone(),
                partial,
            }));
    }
    plan.hosts[ad].notices.extend(notices);
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
        let text = "[active_directory]\nserver = \"ldap://dc1\"\n\n[[active_directory.activation_objects]]\nname = \"WS\"\nhost_key = \"BCDFG-HJKMP-QRTVW-XY234-6789B\"\nvia = \"kms01\"\n\n[[active_directory.activation_objects]]\nname = \"Phone\"\nhost_key = \"VK7JG-NPHTM-C97JM-9MPGT-3V66T\"\nvia = \"kms01\"\nactivation = \"phone\"\nconfirmation_id = { env = \"CID\" }\n\n[hosts.kms01]\ntarget = \"lab:kms01.json\"\n";
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
    fn a_missing_online_object_is_a_change_of_its_via_host_and_a_phone_one_is_said_unsupported() {
        let config = full_config();
        let cfg = config.active_directory.as_ref().expect("ad");
        let ad = plan_ad(cfg, spec(), state(Vec::new()));
        let said = ad.notices.join("\n");
        assert!(
            said.contains("`Phone`")
                && said.contains("does not support yet")
                && !said.contains("`WS`"),
            "{said}"
        );
        assert!(
            !said.contains("VK7JG") && said.contains("*****-*****-*****-*****-3V66T"),
            "{said}"
        );
        let mut plan =
            kmsconf_model::KmsPlan::new("kmsconf.toml".into(), ".".into(), vec![kms01(), ad]);
        annotate(&mut plan, &config);
        let host = &plan.hosts[0];
        assert_eq!(
            host.changes.len(),
            1,
            "only the online object: {:?}",
            host.changes
        );
        let change = &host.changes[0];
        assert_eq!(change.address, "activation_objects/WS");
        assert!(
            matches!(&change.operation, PlanOp::CreateActivationObject { name, partial, .. } if name == "WS" && partial == "6789B")
        );
        assert_eq!(
            change.equivalent.as_deref(),
            Some("slmgr.vbs /ad-activation-online *****-*****-*****-*****-6789B \"WS\"")
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
}
