//! The Active Directory-based activation checks: the schema class and the Activation Objects
//! container exist (`adba-container`), no SKU has two objects (`adba-duplicates`), no object
//! is for a key the config no longer declares (`adba-stale`), and every declared object exists
//! (`adba-missing`, with what creates it). One LDAP read gives them all.

use std::time::Duration;

use kmsconf_model::adba::{self, ActivationObject, AdState, OBJECT_CLASS};
use kmsconf_model::config::AdConfig;

use super::{Check, Verdict, ADBA_CONTAINER, ADBA_DUPLICATES, ADBA_MISSING, ADBA_STALE};
use crate::failure::{FailureKind, HostFailure};

/// The name doctor shows the directory's checks under.
pub const ENTRY: &str = "active_directory";

/// Reads the directory of `cfg` (bind, rootDSE, schema, container), within `timeout`; `dns` is
/// `[dns] server`, which finds the domain controller when `cfg` names none.
pub fn read(cfg: &AdConfig, dns: Option<&str>, timeout: Duration) -> Result<AdState, HostFailure> {
    let bind = kmsconf_targets::ldap::Bind::of(cfg, dns);
    kmsconf_targets::ldap::read_within(&bind, timeout).map_err(crate::failure::of_target)
}

/// The checks from one reading.
pub fn adba_checks(cfg: &AdConfig, read: &Result<AdState, HostFailure>) -> Vec<Check> {
    let state = match read {
        Ok(s) => s,
        Err(e) => {
            let fix = match e.kind {
                // the domain controller was looked for in DNS and not found there
                FailureKind::Dns => "check the domain's `_ldap._tcp.dc._msdcs` SRV records on the DNS server named (`[dns] server`, else /etc/resolv.conf's first `nameserver`), or set `server = \"ldap://…\"` in `[active_directory]`",
                _ => "check the `[active_directory]` server and that the bind identity has a Kerberos ticket (`kinit`) or a keytab",
            };
            let c = Check::new(
                ENTRY,
                ADBA_CONTAINER,
                Verdict::Failed,
                format!("cannot read the directory: {}", e.message),
            )
            .failure(e.clone())
            .fix(fix);
            return vec![c];
        }
    };
    let (declared, unread) = adba::declared(cfg);
    let mut checks = vec![
        container(state),
        duplicates(state),
        stale(cfg, state, &declared, &unread),
    ];
    checks.extend(missing(cfg, state));
    checks
}

/// A warning for each declared object the directory lacks, naming it, its `via` host and what
/// creates it (for a phone object still pending: the installation ID, then the confirmation
/// ID); one `ok` when none is missing. Objects whose key cannot be read now are left to
/// `adba-stale`, which says so.
fn missing(cfg: &AdConfig, state: &AdState) -> Vec<Check> {
    let missing = kmsconf_providers::status::AdMissingStatus::of(cfg, state);
    if missing.is_empty() {
        return vec![Check::new(
            ENTRY,
            ADBA_MISSING,
            Verdict::Ok,
            "every declared activation object exists",
        )];
    }
    missing
        .into_iter()
        .map(|m| {
            let phone = match m.confirmation_id_available {
                Some(false) => ", activated by phone: pending, no confirmation ID yet",
                Some(true) => ", activated by phone: its confirmation ID is at hand",
                None => "",
            };
            let detail = format!(
                "activation object `{}` (key ending {}, via host `{}`{phone}) does not exist in `{}`",
                m.name,
                m.partial_key,
                m.via,
                state.container_dn()
            );
            Check::new(ENTRY, ADBA_MISSING, Verdict::Warning, detail)
                .about(m.name.clone())
                .fix(m.next_step)
        })
        .collect()
}

fn container(state: &AdState) -> Check {
    let dn = state.container_dn();
    let at = match &state.located {
        Some(found) => format!(
            "LDAP server `{}` ({found}, bound as `{}`)",
            state.server, state.identity
        ),
        None => format!(
            "LDAP server `{}` (bound as `{}`)",
            state.server, state.identity
        ),
    };
    if !state.schema_class {
        return Check::new(
            ENTRY,
            ADBA_CONTAINER,
            Verdict::Failed,
            format!("{at}: the schema has no class `{OBJECT_CLASS}`"),
        )
        .fix("extend the forest schema to Windows Server 2012 or later (`adprep /forestprep`)");
    }
    if !state.container {
        return Check::new(ENTRY, ADBA_CONTAINER, Verdict::Failed, format!("{at}: the container `{dn}` does not exist"))
            .fix("run the Windows Server 2012 forest preparation (`adprep /forestprep`; Samba: `samba-tool domain functionalprep --forest-prep --function-level=2012_R2`), which creates it");
    }
    let n = state.objects.len();
    Check::new(
        ENTRY,
        ADBA_CONTAINER,
        Verdict::Ok,
        format!(
            "{at}: `{dn}` holds {n} activation object{}",
            if n == 1 { "" } else { "s" }
        ),
    )
}

fn duplicates(state: &AdState) -> Check {
    let diff = adba::diff(&[], &state.objects);
    if diff.duplicate_skus.is_empty() {
        return Check::new(
            ENTRY,
            ADBA_DUPLICATES,
            Verdict::Ok,
            "each SKU has at most one activation object",
        );
    }
    let list: Vec<String> = diff
        .duplicate_skus
        .iter()
        .map(|(sku, objects)| format!("SKU {sku}: {}", listed(objects)))
        .collect();
    Check::new(ENTRY, ADBA_DUPLICATES, Verdict::Warning, format!("more than one activation object for one SKU ({})", list.join("; ")))
        .fix("keep one object per SKU: delete the others by their DN (`slmgr.vbs /del-ao DN`), or declare one and set `exclusive = true`")
}

fn stale(
    cfg: &AdConfig,
    state: &AdState,
    declared: &[(String, String)],
    unread: &[String],
) -> Check {
    if !unread.is_empty() {
        let names: Vec<String> = unread.iter().map(|n| format!("`{n}`")).collect();
        return Check::new(ENTRY, ADBA_STALE, Verdict::Warning, format!("the host keys of {} cannot be read now, so the objects cannot be compared with them", names.join(", ")))
            .fix("set the environment variables or files the `host_key` entries name");
    }
    let diff = adba::diff(declared, &state.objects);
    if diff.undeclared.is_empty() {
        return Check::new(
            ENTRY,
            ADBA_STALE,
            Verdict::Ok,
            "every activation object is for a declared host key",
        );
    }
    let fix = if cfg.exclusive {
        "`kmsconf apply` deletes them (`exclusive = true`)"
    } else {
        "declare them, or delete them by their DN (`slmgr.vbs /del-ao DN`, or `exclusive = true`)"
    };
    Check::new(
        ENTRY,
        ADBA_STALE,
        Verdict::Warning,
        format!(
            "activation objects for a host key the config does not declare: {}",
            listed(&diff.undeclared)
        ),
    )
    .fix(fix)
}

/// `` `DN` (key ending AAAAA) `` for each object.
fn listed(objects: &[ActivationObject]) -> String {
    objects
        .iter()
        .map(|o| format!("`{}` (key ending {})", o.dn, o.partial_key))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(dn: &str, sku: &str, partial: &str) -> ActivationObject {
        ActivationObject {
            dn: dn.into(),
            name: dn.into(),
            sku_id: sku.into(),
            partial_key: partial.into(),
            pid: String::new(),
        }
    }

    fn state(objects: Vec<ActivationObject>, container: bool) -> AdState {
        AdState {
            server: "dc1:389".into(),
            identity: "admin@CORP".into(),
            forest_root: "DC=corp".into(),
            schema_class: true,
            container,
            objects,
            located: None,
        }
    }

    #[test]
    fn a_missing_container_fails_naming_server_identity_and_dn() {
        let c = container(&state(vec![], false));
        assert_eq!(c.status, Verdict::Failed);
        for part in [
            "dc1:389",
            "admin@CORP",
            "CN=Activation Objects,CN=Microsoft SPP,CN=Services,CN=Configuration,DC=corp",
        ] {
            assert!(c.detail.contains(part), "{part}: {}", c.detail);
        }
        assert_eq!(container(&state(vec![], true)).status, Verdict::Ok);
    }

    #[test]
    fn a_server_found_by_srv_records_says_so() {
        let mut found = state(vec![], true);
        found.located = Some(adba::DcLocation {
            srv_name: adba::dc_srv_name("corp.example"),
            dns_server: "127.0.0.1:5353".into(),
        });
        let c = container(&found);
        assert_eq!(c.status, Verdict::Ok);
        assert!(
            c.detail.starts_with("LDAP server `dc1:389` (found by the `_ldap._tcp.dc._msdcs.corp.example` SRV records on DNS server `127.0.0.1:5353`, bound as `admin@CORP`)"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn two_objects_of_one_sku_warn_and_undeclared_keys_are_stale() {
        let s = state(
            vec![object("CN=a", "s1", "AAAAA"), object("CN=b", "s1", "BBBBB")],
            true,
        );
        let d = duplicates(&s);
        assert_eq!(d.status, Verdict::Warning);
        assert!(
            d.detail.contains("`CN=a`") && d.detail.contains("`CN=b`"),
            "{}",
            d.detail
        );
        let cfg = AdConfig {
            server: None,
            principal: None,
            keytab: None,
            exclusive: false,
            objects: vec![],
        };
        let declared = [("ws".to_string(), "AAAAA".to_string())];
        let st = stale(&cfg, &s, &declared, &[]);
        assert_eq!(st.status, Verdict::Warning);
        assert!(
            st.detail.contains("`CN=b` (key ending BBBBB)") && !st.detail.contains("CN=a"),
            "{}",
            st.detail
        );
        let all = [
            ("ws".to_string(), "AAAAA".to_string()),
            ("x".to_string(), "bbbbb".to_string()),
        ];
        assert_eq!(stale(&cfg, &s, &all, &[]).status, Verdict::Ok);
    }

    #[test]
    fn a_declared_object_the_directory_lacks_warns_with_its_via_host_and_next_step() {
        let text = "[active_directory]\nserver = \"ldap://dc1\"\n\n[[active_directory.activation_objects]]\nname = \"WS\"\nhost_key = \"BCDFG-HJKMP-QRTVW-XY234-6789B\"\nvia = \"kms01\"\n\n[[active_directory.activation_objects]]\nname = \"Phone\"\nhost_key = \"VK7JG-NPHTM-C97JM-9MPGT-3V66T\"\nvia = \"kms02\"\nactivation = \"phone\"\nconfirmation_id = { env = \"KMSCONF_TEST_DOCTOR_CID_UNSET\" }\n\n[hosts.kms01]\ntarget = \"lab:kms01.json\"\n\n[hosts.kms02]\ntarget = \"lab:kms02.json\"\n";
        let config =
            kmsconf_model::config::Config::parse(std::path::Path::new("kmsconf.toml"), text)
                .expect("config");
        let cfg = config.active_directory.as_ref().expect("ad");
        let checks = missing(cfg, &state(vec![object("CN=WS", "s1", "6789B")], true));
        let [phone] = checks.as_slice() else {
            panic!("one warning: {checks:?}");
        };
        assert_eq!(
            (phone.check, phone.status, phone.subject.as_deref()),
            (ADBA_MISSING, Verdict::Warning, Some("Phone"))
        );
        assert_eq!(
            phone.detail,
            "activation object `Phone` (key ending 3V66T, via host `kms02`, activated by phone: pending, no confirmation ID yet) does not exist in `CN=Activation Objects,CN=Microsoft SPP,CN=Services,CN=Configuration,DC=corp`"
        );
        assert_eq!(
            phone.fix.as_deref(),
            Some("get the installation ID with `kmsconf plan` (host `kms02` generates it), call the activation line with it, then put the confirmation ID in env `KMSCONF_TEST_DOCTOR_CID_UNSET` and run `kmsconf apply`")
        );
        let checks = missing(cfg, &state(vec![], true));
        assert_eq!(checks.len(), 2);
        assert!(
            checks[0]
                .detail
                .contains("`WS` (key ending 6789B, via host `kms01`)")
                && checks[0]
                    .fix
                    .as_deref()
                    .is_some_and(|f| f.starts_with("`kmsconf apply`")),
            "{:?}",
            checks[0]
        );
        let all = missing(
            cfg,
            &state(
                vec![
                    object("CN=WS", "s1", "6789B"),
                    object("CN=P", "s2", "3v66t"),
                ],
                true,
            ),
        );
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].status, Verdict::Ok);
        assert!(!format!("{checks:?}").contains("VK7JG"));
    }
}
