//! Active Directory-based activation (ADBA): the activation objects (class
//! `msSPP-ActivationObject`) a forest keeps under `CN=Activation Objects,CN=Microsoft SPP,
//! CN=Services,CN=Configuration,<forest root>`, as discovery reads them over LDAP, and how they
//! compare with what `[active_directory]` declares (and what makes a missing one exist). Only
//! Windows' licensing service creates an object; kmsconf reads them, and deletes one by its
//! exact DN.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The object class of an activation object (MS-ADSC `ms-SPP-Activation-Object`).
pub const OBJECT_CLASS: &str = "msSPP-ActivationObject";
/// The licensing service's WMI method that creates an activation object online (what
/// `slmgr.vbs /ad-activation-online` calls).
pub const ONLINE_METHOD: &str = "SoftwareLicensingService.DoActiveDirectoryOnlineActivation";
/// The SRV name prefix that finds a domain controller of a domain (MS-ADTS 6.3.6.1): a DC of
/// `corp.example` answers at `_ldap._tcp.dc._msdcs.corp.example`. Any DC of the forest holds the
/// configuration partition, where the activation objects live.
pub const DC_SRV_PREFIX: &str = "_ldap._tcp.dc._msdcs";
/// The method that generates the forest's installation ID for phone activation from a CSVLK
/// (what `slmgr.vbs /ad-activation-get-iid` calls); it changes nothing.
pub const INSTALLATION_ID_METHOD: &str =
    "SoftwareLicensingService.GenerateActiveDirectoryOfflineActivationId";
/// The method that creates an activation object from the phone line's confirmation ID (what
/// `slmgr.vbs /ad-activation-apply-cid` calls).
pub const PHONE_METHOD: &str =
    "SoftwareLicensingService.DepositActiveDirectoryOfflineActivationConfirmation";
/// The container's DN under the forest root's DN.
pub const CONTAINER_RDNS: &str =
    "CN=Activation Objects,CN=Microsoft SPP,CN=Services,CN=Configuration";
/// The attributes discovery reads (of the class's `systemMustContain`, `msSPP-KMSIds` and the
/// licence blobs left out), and `cn`, the object's name.
pub const ATTRIBUTES: [&str; 4] = [
    "cn",
    "msSPP-CSVLKSkuId",
    "msSPP-CSVLKPartialProductKey",
    "msSPP-CSVLKPid",
];

/// The container's DN in the forest whose root domain is `forest_root` (`DC=corp,DC=example`).
pub fn container_dn(forest_root: &str) -> String {
    format!("{CONTAINER_RDNS},{forest_root}")
}

/// What discovery read from the directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdState {
    /// `host:port` of the LDAP server that answered.
    pub server: String,
    /// The principal kmsconf bound as.
    pub identity: String,
    /// The forest root domain's DN, from the rootDSE's `rootDomainNamingContext`.
    pub forest_root: String,
    /// Whether the schema defines `msSPP-ActivationObject`.
    pub schema_class: bool,
    /// Whether the Activation Objects container exists.
    pub container: bool,
    /// The objects in it, by DN.
    pub objects: Vec<ActivationObject>,
    /// How `server` was found when the config names none: the SRV records it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub located: Option<DcLocation>,
}

/// The DNS lookup that found the domain controller: which SRV name, on which DNS server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DcLocation {
    /// `_ldap._tcp.dc._msdcs.<domain>`.
    pub srv_name: String,
    /// `host:port` of the DNS server asked.
    pub dns_server: String,
}

impl fmt::Display for DcLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "found by the `{}` SRV records on DNS server `{}`",
            self.srv_name, self.dns_server
        )
    }
}

/// The SRV name of the domain controllers of `domain` (`corp.example`, any case).
pub fn dc_srv_name(domain: &str) -> String {
    format!(
        "{DC_SRV_PREFIX}.{}",
        domain.trim_end_matches('.').to_ascii_lowercase()
    )
}

impl AdState {
    pub fn container_dn(&self) -> String {
        container_dn(&self.forest_root)
    }
}

/// One activation object, as far as kmsconf shows it (no licence, no installation or
/// confirmation ID).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationObject {
    pub dn: String,
    /// The object's name: its RDN's value (the `ActivationObjectName` Windows creates it with,
    /// and what `slmgr.vbs /del-ao` takes besides the DN).
    pub name: String,
    /// `msSPP-CSVLKSkuId` as a GUID (`{…}` form without braces), lowercase.
    pub sku_id: String,
    /// `msSPP-CSVLKPartialProductKey`: the key's last five characters.
    pub partial_key: String,
    /// `msSPP-CSVLKPid`, the key's extended PID.
    pub pid: String,
}

/// A GUID as Windows writes it from its 16 bytes (the first three fields little-endian):
/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`; `None` for a value that is not 16 bytes.
pub fn guid_text(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15]
    ))
}

/// The declared objects' `(name, partial key)`, their keys read now; the names of those whose
/// key cannot be read now (an unset variable) or is malformed come second.
pub fn declared(cfg: &crate::config::AdConfig) -> (Vec<(String, String)>, Vec<String>) {
    let mut known = Vec::new();
    let mut unread = Vec::new();
    for o in &cfg.objects {
        let what = format!("the host key of activation object `{}`", o.name);
        let key = o.host_key.resolve(&what).ok();
        match key.and_then(|s| crate::keys::ProductKey::parse(&s).ok()) {
            Some(key) => known.push((o.name.clone(), key.partial())),
            None => unread.push(o.name.clone()),
        }
    }
    (known, unread)
}

/// How the objects compare with the declared ones: matched by partial key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdDiff {
    /// Declared names with no object for their key's last five characters.
    pub missing: Vec<String>,
    /// Objects present for a declared key: (declared name, object).
    pub present: Vec<(String, ActivationObject)>,
    /// Objects for no declared key.
    pub undeclared: Vec<ActivationObject>,
    /// SKUs with more than one object.
    pub duplicate_skus: Vec<(String, Vec<ActivationObject>)>,
}

/// Compares `objects` with the declared `(name, partial key)` pairs.
pub fn diff(declared: &[(String, String)], objects: &[ActivationObject]) -> AdDiff {
    let mut out = AdDiff::default();
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    for (name, partial) in declared {
        let found: Vec<&ActivationObject> = objects
            .iter()
            .filter(|o| same(&o.partial_key, partial))
            .collect();
        if found.is_empty() {
            out.missing.push(name.clone());
        }
        out.present
            .extend(found.into_iter().map(|o| (name.clone(), o.clone())));
    }
    out.undeclared = objects
        .iter()
        .filter(|o| !declared.iter().any(|(_, p)| same(&o.partial_key, p)))
        .cloned()
        .collect();
    let mut by_sku: std::collections::BTreeMap<&str, Vec<ActivationObject>> = Default::default();
    for o in objects {
        by_sku.entry(&o.sku_id).or_default().push(o.clone());
    }
    out.duplicate_skus = by_sku
        .into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    out
}

/// Whether a phone object's confirmation ID is there to use now (its variable or file holds
/// one); an unset variable or an empty file means "not phoned yet". Never its value.
pub fn confirmation_id_available(o: &crate::config::AdObjectConfig) -> bool {
    o.confirmation_id
        .as_ref()
        .is_some_and(|c| c.source.is_available())
}

/// What makes a declared object that the directory lacks exist, as `status` and `doctor` say
/// it: apply through its `via` host (online, or by phone with the confirmation ID at hand), or
/// for a phone object still pending, the installation ID from `kmsconf plan` and then the
/// confirmation ID the activation line gives.
pub fn next_step(o: &crate::config::AdObjectConfig) -> String {
    let via = &o.via;
    match (o.activation, &o.confirmation_id) {
        (crate::config::AdActivation::Online, _) => format!("`kmsconf apply` creates it through host `{via}` (`slmgr.vbs /ad-activation-online`)"),
        (crate::config::AdActivation::Phone, Some(c)) if confirmation_id_available(o) => format!("`kmsconf apply` creates it through host `{via}` from the confirmation ID in {}", c.source.describe()),
        (crate::config::AdActivation::Phone, Some(c)) => format!("get the installation ID with `kmsconf plan` (host `{via}` generates it), call the activation line with it, then put the confirmation ID in {} and run `kmsconf apply`", c.source.describe()),
        (crate::config::AdActivation::Phone, None) => format!("get the installation ID with `kmsconf plan` (host `{via}` generates it), call the activation line with it, then set `confirmation_id` and run `kmsconf apply`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(cid: Option<kmsconf_engine::secret::SecretSource>) -> crate::config::AdObjectConfig {
        let here = kmsconf_engine::diagnostic::Location {
            file: "kmsconf.toml".into(),
            line: 1,
            column: 1,
        };
        let secret = |source| kmsconf_engine::secret::DeclaredSecret {
            source,
            declared_at: here.clone(),
        };
        let literal = |text: &str| {
            kmsconf_engine::secret::SecretSource::Literal(kmsconf_engine::secret::Secret::new(text))
        };
        crate::config::AdObjectConfig {
            name: "WS".into(),
            host_key: secret(literal("BCDFG-HJKMP-QRTVW-XY234-6789B")),
            via: "kms01".into(),
            activation: crate::config::AdActivation::Phone,
            confirmation_id: cid.map(secret),
            declared_at: here.clone(),
        }
    }

    #[test]
    fn the_next_step_is_apply_or_for_a_pending_phone_object_the_installation_id_first() {
        use kmsconf_engine::secret::{Secret, SecretSource};
        let mut online = phone(None);
        online.activation = crate::config::AdActivation::Online;
        assert_eq!(
            next_step(&online),
            "`kmsconf apply` creates it through host `kms01` (`slmgr.vbs /ad-activation-online`)"
        );
        let pending = phone(None);
        assert!(!confirmation_id_available(&pending));
        assert_eq!(
            next_step(&pending),
            "get the installation ID with `kmsconf plan` (host `kms01` generates it), call the activation line with it, then set `confirmation_id` and run `kmsconf apply`"
        );
        let cid = "123450-".repeat(7) + "123450";
        let ready = phone(Some(SecretSource::Literal(Secret::new(&cid))));
        assert!(confirmation_id_available(&ready));
        let step = next_step(&ready);
        assert!(
            step.starts_with(
                "`kmsconf apply` creates it through host `kms01` from the confirmation ID in"
            ) && !step.contains(&cid),
            "{step}"
        );
        // a variable that is not set is "not phoned yet", and named
        let unset = phone(Some(SecretSource::Env(
            "KMSCONF_TEST_ADBA_CID_UNSET".into(),
        )));
        assert!(!confirmation_id_available(&unset));
        assert!(
            next_step(&unset)
                .contains("put the confirmation ID in env `KMSCONF_TEST_ADBA_CID_UNSET`"),
            "{}",
            next_step(&unset)
        );
    }

    fn object(dn: &str, sku: &str, partial: &str) -> ActivationObject {
        ActivationObject {
            dn: dn.into(),
            name: dn.into(),
            sku_id: sku.into(),
            partial_key: partial.into(),
            pid: String::new(),
        }
    }

    #[test]
    fn guids_read_as_windows_writes_them() {
        let bytes: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            guid_text(&bytes).as_deref(),
            Some("03020100-0504-0706-0809-0a0b0c0d0e0f")
        );
        assert_eq!(guid_text(&bytes[..15]), None);
    }

    #[test]
    fn objects_match_by_partial_key_and_skus_with_two_objects_are_duplicates() {
        let objects = [
            object("a", "s1", "AAAAA"),
            object("b", "s1", "BBBBB"),
            object("c", "s2", "CCCCC"),
        ];
        let declared = [
            ("ws".to_string(), "aaaaa".to_string()),
            ("new".to_string(), "DDDDD".to_string()),
        ];
        let d = diff(&declared, &objects);
        assert_eq!(d.missing, ["new"]);
        assert_eq!(d.present.len(), 1);
        assert_eq!(d.present[0].1.dn, "a");
        let undeclared: Vec<&str> = d.undeclared.iter().map(|o| o.dn.as_str()).collect();
        assert_eq!(undeclared, ["b", "c"]);
        assert_eq!(d.duplicate_skus.len(), 1);
        assert_eq!(d.duplicate_skus[0].0, "s1");
    }

    #[test]
    fn a_domain_controllers_srv_name_is_the_lowercase_domain_under_the_msdcs_prefix() {
        assert_eq!(
            dc_srv_name("CORP.Example."),
            "_ldap._tcp.dc._msdcs.corp.example"
        );
        let found = DcLocation {
            srv_name: dc_srv_name("corp.example"),
            dns_server: "127.0.0.1:5353".into(),
        };
        assert_eq!(
            found.to_string(),
            "found by the `_ldap._tcp.dc._msdcs.corp.example` SRV records on DNS server `127.0.0.1:5353`"
        );
    }
}

/// The ADBA facts table (`model/data/adba.toml`), read by its tests: every name this module
/// and the LDAP client use has a sourced row.
#[cfg(test)]
mod facts {
    use std::collections::BTreeMap;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Table {
        sources: BTreeMap<String, String>,
        fact: Vec<Fact>,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Fact {
        kind: String,
        name: String,
        detail: String,
        source: String,
        #[serde(default = "yes")]
        verified: bool,
    }

    fn yes() -> bool {
        true
    }

    #[test]
    fn every_name_kmsconf_uses_has_a_sourced_row() {
        let table: Table =
            toml::from_str(include_str!("../data/adba.toml")).expect("adba.toml parses");
        for f in &table.fact {
            assert!(
                table.sources.contains_key(&f.source),
                "{}: {}",
                f.name,
                f.source
            );
        }
        let has =
            |kind: &str, name: &str| table.fact.iter().any(|f| f.kind == kind && f.name == name);
        assert!(has("class", super::OBJECT_CLASS));
        assert!(has("container", super::CONTAINER_RDNS));
        for attribute in super::ATTRIBUTES.iter().filter(|a| **a != "cn") {
            assert!(has("attribute", attribute), "{attribute}");
        }
        let mut rows = std::collections::BTreeSet::new();
        for f in &table.fact {
            assert!(
                rows.insert((&f.kind, &f.name)),
                "{} {} twice",
                f.kind,
                f.name
            );
        }
        assert!(has("wmi", super::ONLINE_METHOD));
        assert!(has("dns", super::DC_SRV_PREFIX));
        assert!(has("dns", "RFC 2782 order"));
        for method in [
            super::ONLINE_METHOD,
            super::INSTALLATION_ID_METHOD,
            super::PHONE_METHOD,
        ] {
            assert!(has("wmi", method), "{method}");
        }
        for switch in [
            "/ad-activation-online",
            "/ad-activation-get-iid",
            "/ad-activation-apply-cid",
            "/del-ao",
        ] {
            assert!(has("slmgr", switch), "{switch}");
        }
    }
}
