//! What `kmsconf status` reports: per host and per KMS host product, what `slmgr.vbs /dlv` and
//! `/dli all` would show (license status in words, partial key, count against the threshold,
//! KMS settings, cumulative request counters), built from one discovery. Nothing is printed here.

use std::borrow::Cow;

use kmsconf_model::config::{HostLifecycle, ProductId, PublishDomain};
use kmsconf_model::failure::HostFailure;
use kmsconf_model::settings::{self, Kind, Setting, SettingValue};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{json, Value};

use kmsconf_model::catalog;
use kmsconf_model::state::{Channel, LicenseStatus, ProductState, RequestCounters, ServiceState};

/// One host's status, or why it could not be read.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HostStatus {
    pub name: String,
    pub target: String,
    pub address: Option<String>,
    /// `present`, or `retired`: the host is to be a KMS client, and its products show what
    /// key it holds now.
    pub state: HostLifecycle,
    /// Set when discovery failed; every other observed field is then absent.
    pub error: Option<HostFailure>,
    pub computer_name: Option<String>,
    pub os: Option<String>,
    /// The host's clock when it answered (RFC 3339, UTC).
    pub clock: Option<String>,
    pub client_machine_id: Option<String>,
    pub remaining_rearm_count: Option<u32>,
    pub service: Option<ServiceStatus>,
    pub products: Vec<ProductStatus>,
}

/// The directory of `[active_directory]`, as `status` shows it: its activation objects, each
/// with the declared object whose host key it is for, or why it could not be read.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AdStatus {
    /// `host:port` of the LDAP server (when read: the one that answered).
    pub server: String,
    /// How `server` was found when the config names none: the SRV records and the DNS server
    /// asked; absent when the config names the server or the directory could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found_by: Option<kmsconf_model::adba::DcLocation>,
    /// The principal kmsconf bound as; `None` when the directory could not be read.
    pub identity: Option<String>,
    /// The Activation Objects container's DN; `None` when the directory could not be read.
    pub container_dn: Option<String>,
    /// Whether the container exists.
    pub container: bool,
    pub objects: Vec<AdObjectStatus>,
    /// Declared activation objects the directory does not hold (matched by the last five
    /// characters of their host keys); a key that cannot be read now is not looked for.
    pub missing: Vec<AdMissingStatus>,
    /// Set when the directory could not be read; every other observed field is then empty.
    pub error: Option<HostFailure>,
}

/// One activation object.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AdObjectStatus {
    pub dn: String,
    pub name: String,
    pub sku_id: String,
    /// The last five characters of its host key.
    pub partial_key: String,
    /// The name of the declared object whose host key ends the same; `None`: undeclared.
    pub declared_as: Option<String>,
}

/// A declared activation object the directory does not hold yet.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AdMissingStatus {
    /// The declared name.
    pub name: String,
    /// The host whose licensing service creates it.
    pub via: String,
    /// The last five characters of its host key.
    pub partial_key: String,
    pub activation: kmsconf_model::config::AdActivation,
    /// `phone` only: whether the confirmation ID's variable or file holds one now (never its
    /// value); `false` means the phone activation is pending. Null for `online`.
    pub confirmation_id_available: Option<bool>,
    /// What to do next: `kmsconf apply`, or for a pending phone activation the installation ID
    /// from `kmsconf plan` and the confirmation ID.
    pub next_step: String,
}

impl AdMissingStatus {
    /// Each declared object of `cfg` with no object in `state`, in declaration order.
    pub fn of(
        cfg: &kmsconf_model::config::AdConfig,
        state: &kmsconf_model::adba::AdState,
    ) -> Vec<Self> {
        use kmsconf_model::config::AdActivation;
        let (declared, _) = kmsconf_model::adba::declared(cfg);
        let missing = kmsconf_model::adba::diff(&declared, &state.objects).missing;
        cfg.objects
            .iter()
            .filter(|o| missing.contains(&o.name))
            .map(|o| Self {
                name: o.name.clone(),
                via: o.via.clone(),
                partial_key: declared
                    .iter()
                    .find(|(n, _)| n == &o.name)
                    .map_or_else(String::new, |(_, p)| p.clone()),
                activation: o.activation,
                confirmation_id_available: (o.activation == AdActivation::Phone)
                    .then(|| kmsconf_model::adba::confirmation_id_available(o)),
                next_step: kmsconf_model::adba::next_step(o),
            })
            .collect()
    }

    /// The human words for its state: `missing`, or `missing: phone activation pending`
    /// while no confirmation ID is at hand.
    pub fn state_text(&self) -> &'static str {
        match self.confirmation_id_available {
            Some(false) => "missing: phone activation pending (no confirmation ID yet)",
            Some(true) => "missing: phone activation (confirmation ID available)",
            None => "missing",
        }
    }
}

impl AdStatus {
    /// The status of `cfg`'s directory read from `server` as `read`.
    pub fn new(
        cfg: &kmsconf_model::config::AdConfig,
        server: String,
        read: Result<&kmsconf_model::adba::AdState, HostFailure>,
    ) -> Self {
        let state = match read {
            Ok(state) => state,
            Err(e) => {
                return Self {
                    server,
                    found_by: None,
                    identity: None,
                    container_dn: None,
                    container: false,
                    objects: Vec::new(),
                    missing: Vec::new(),
                    error: Some(e),
                }
            }
        };
        let (declared, _) = kmsconf_model::adba::declared(cfg);
        let objects = state
            .objects
            .iter()
            .map(|o| AdObjectStatus {
                dn: o.dn.clone(),
                name: o.name.clone(),
                sku_id: o.sku_id.clone(),
                partial_key: o.partial_key.clone(),
                declared_as: declared
                    .iter()
                    .find(|(_, p)| p.eq_ignore_ascii_case(&o.partial_key))
                    .map(|(n, _)| n.clone()),
            })
            .collect();
        Self {
            server: state.server.clone(),
            found_by: state.located.clone(),
            identity: Some(state.identity.clone()),
            container_dn: Some(state.container_dn()),
            container: state.container,
            objects,
            missing: AdMissingStatus::of(cfg, state),
            error: None,
        }
    }
}

/// The KMS settings in effect: in `--json`, one field per setting (as its row names it) and
/// `restart_pending`.
#[derive(Debug, Clone)]
pub struct ServiceStatus {
    pub settings: Vec<ShownSetting>,
    pub restart_pending: bool,
}

/// One setting as `status` shows it.
#[derive(Debug, Clone)]
pub struct ShownSetting {
    pub field: &'static str,
    pub json: Value,
    /// The human text (`port 1688`); `None` shows nothing (an empty publish list).
    pub text: Option<String>,
    /// The text follows the one before with a space rather than `, ` (the publish list, after
    /// DNS publishing).
    pub attached: bool,
}

impl ServiceStatus {
    /// The status of `settings` on a host in `state`.
    pub fn new(settings: &[Setting], state: &ServiceState) -> Self {
        Self {
            settings: settings.iter().map(|s| shown(s, state)).collect(),
            restart_pending: state.restart_pending,
        }
    }

    /// The human line: `port 1688, DNS publishing on (corp.example 0 0), priority normal, ...`.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for s in &self.settings {
            if let Some(text) = &s.text {
                if !out.is_empty() {
                    out.push_str(if s.attached { " " } else { ", " });
                }
                out.push_str(text);
            }
        }
        out
    }
}

fn shown(setting: &Setting, state: &ServiceState) -> ShownSetting {
    let value = state.current(setting);
    let how = &setting.status;
    let (json, text) = match &value {
        SettingValue::U16(_) | SettingValue::U32(_) => (
            json!(value.number()),
            Some(format!("{} {value}{}", how.label, how.unit)),
        ),
        SettingValue::Bool(b) => {
            let word = if *b { how.words.0 } else { how.words.1 };
            let json = if how.words_in_json {
                json!(word)
            } else {
                json!(b)
            };
            (json, Some(format!("{} {word}", how.label)))
        }
        SettingValue::List(list) => {
            let entries: Vec<String> = list
                .iter()
                .map(|d| format!("{} {} {}", d.domain, d.priority, d.weight))
                .collect();
            let text = (!entries.is_empty()).then(|| format!("({})", entries.join("; ")));
            (json!(list), text)
        }
    };
    ShownSetting {
        field: how.field,
        json,
        text,
        attached: value.kind() == Kind::List,
    }
}

impl Serialize for ServiceStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.settings.len() + 1))?;
        for s in &self.settings {
            map.serialize_entry(s.field, &s.json)?;
        }
        map.serialize_entry("restart_pending", &self.restart_pending)?;
        map.end()
    }
}

/// The schema of the `--json` form, generated from the setting rows like the form itself.
impl JsonSchema for ServiceStatus {
    fn schema_name() -> Cow<'static, str> {
        "ServiceStatus".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut properties = serde_json::Map::new();
        let mut required = Vec::new();
        for setting in settings::table() {
            let how = &setting.status;
            let schema = match setting.kind {
                Kind::U16 => json!({ "type": "integer", "minimum": 0, "maximum": u16::MAX }),
                Kind::U32 => json!({ "type": "integer", "minimum": 0 }),
                Kind::Bool if how.words_in_json => {
                    json!({ "type": "string", "enum": [how.words.0, how.words.1] })
                }
                Kind::Bool => json!({ "type": "boolean" }),
                Kind::List => generator.subschema_for::<Vec<PublishDomain>>().to_value(),
            };
            properties.insert(how.field.to_string(), schema);
            required.push(how.field);
        }
        properties.insert("restart_pending".into(), json!({ "type": "boolean" }));
        required.push("restart_pending");
        schemars::json_schema!({
            "description": "The KMS settings in effect: one field per setting, and whether a restart is pending.",
            "type": "object",
            "properties": properties,
            "required": required,
        })
    }
}

/// One KMS host product: declared in the config, or holding a KMS host key on the host.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProductStatus {
    /// The config's product id.
    pub product: ProductId,
    pub name: String,
    pub declared: bool,
    /// `licensed`, `unlicensed`, `initial-grace`, ...; `unlicensed` when nothing is installed.
    pub license_status: LicenseStatus,
    pub channel: String,
    pub partial_key: Option<String>,
    /// Distinct clients counted; null when the host reports none (-1).
    pub current_count: Option<u32>,
    /// The count the product needs before the host activates clients.
    pub required_count: u32,
    /// For Windows: the lower count that already activates Windows Server.
    pub required_count_server: Option<u32>,
    pub grace_minutes: u32,
    pub requests: RequestCounters,
    /// What the installed KMS host key activates; absent without a KMS host key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activates: Option<KeyCoverage>,
}

/// The clients a KMS host key activates, by its group in kmsconf's coverage table
/// (`model/data/coverage.toml`), and where that was read.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct KeyCoverage {
    /// The group id (`windows-server-2022`); null when the Description names no group kmsconf
    /// knows.
    pub group: Option<String>,
    /// Microsoft's name of the group (`Volume License for Windows Server 2022`).
    pub name: Option<String>,
    /// Client family ids the key activates (`[fleet] clients` takes them).
    pub clients: Vec<String>,
    /// Host operating systems the key installs on.
    pub hosted_on: Vec<String>,
    /// What told the group: the product's `Description`, or (Office) its product.
    pub read_from: String,
    /// The table's source for the group's row.
    pub source: Option<String>,
    /// false: no source confirms the row, or the Description text that names the group.
    pub verified: bool,
}

/// The coverage of the KMS host key of `id`, when `p` holds one.
fn key_coverage(id: ProductId, p: &ProductState) -> Option<KeyCoverage> {
    if p.channel != Channel::KmsHost {
        return None;
    }
    let table = kmsconf_model::coverage::coverage();
    let description = p.description.as_deref();
    let read_from = match (id.is_office(), description) {
        (true, _) => format!("product `{id}`"),
        (false, Some(d)) => format!("Description `{d}`"),
        (false, None) => "no Description".to_string(),
    };
    let group = table.group_of(id.id(), description);
    Some(KeyCoverage {
        group: group.map(|g| g.id.clone()),
        name: group.map(|g| g.name.clone()),
        clients: group.map(|g| g.activates.clone()).unwrap_or_default(),
        hosted_on: group.map(|g| g.hosted_on.clone()).unwrap_or_default(),
        read_from,
        source: group.and_then(|g| table.sources.get(&g.source).cloned()),
        verified: group.is_some_and(|g| g.verified && (id.is_office() || g.channel_verified)),
    })
}

pub(crate) fn product_status(
    id: ProductId,
    declared: bool,
    observed: Option<&ProductState>,
) -> ProductStatus {
    let info = catalog::product(id);
    let required = observed
        .and_then(|p| p.required_count)
        .or(info.map(|i| i.required_count))
        .unwrap_or(5);
    ProductStatus {
        product: id,
        name: catalog::product_name(id),
        declared,
        license_status: observed.map_or(LicenseStatus::Unlicensed, |p| p.license_status),
        channel: observed.map_or(Channel::None, |p| p.channel).to_string(),
        partial_key: observed.and_then(|p| p.partial_key.clone()),
        // an activated KMS host that no client has asked yet reports -1 (`None`); its count is 0
        current_count: observed
            .and_then(|p| p.current_count.or(p.is_activated_kms_host().then_some(0))),
        required_count: required,
        required_count_server: info.and_then(|i| i.required_count_server),
        grace_minutes: observed.map_or(0, |p| p.grace_minutes),
        requests: observed.map(|p| p.requests.clone()).unwrap_or_default(),
        activates: observed.and_then(|p| key_coverage(id, p)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsconf_model::adba::{ActivationObject, AdState};
    use kmsconf_model::config::{AdActivation, Config};

    /// Two declared objects, `WS` online and `Phone` by phone with its confirmation ID in an
    /// unset variable; the directory holds `WS`'s and an undeclared one.
    #[test]
    fn declared_objects_the_directory_lacks_are_missing_and_a_phone_one_is_pending() {
        let text = "[active_directory]\nserver = \"ldap://dc1\"\n\n[[active_directory.activation_objects]]\nname = \"WS\"\nhost_key = \"BCDFG-HJKMP-QRTVW-XY234-6789B\"\nvia = \"kms01\"\n\n[[active_directory.activation_objects]]\nname = \"Phone\"\nhost_key = \"VK7JG-NPHTM-C97JM-9MPGT-3V66T\"\nvia = \"kms02\"\nactivation = \"phone\"\nconfirmation_id = { env = \"KMSCONF_TEST_STATUS_CID_UNSET\" }\n\n[hosts.kms01]\ntarget = \"lab:kms01.json\"\n\n[hosts.kms02]\ntarget = \"lab:kms02.json\"\n";
        let config = Config::parse(std::path::Path::new("kmsconf.toml"), text).expect("config");
        let cfg = config.active_directory.as_ref().expect("ad");
        let object = |name: &str, partial: &str| ActivationObject {
            dn: format!("CN={name},CN=Activation Objects"),
            name: name.into(),
            sku_id: "s1".into(),
            partial_key: partial.into(),
            pid: String::new(),
        };
        let state = AdState {
            container: true,
            schema_class: true,
            objects: vec![object("WS", "6789B"), object("Old", "QRTVW")],
            ..AdState::default()
        };
        let status = AdStatus::new(cfg, "dc1:389".into(), Ok(&state));
        assert_eq!(status.objects.len(), 2);
        let [missing] = status.missing.as_slice() else {
            panic!("one missing: {:?}", status.missing);
        };
        assert_eq!(
            (
                missing.name.as_str(),
                missing.via.as_str(),
                missing.partial_key.as_str()
            ),
            ("Phone", "kms02", "3V66T")
        );
        assert_eq!(missing.activation, AdActivation::Phone);
        assert_eq!(missing.confirmation_id_available, Some(false));
        assert_eq!(
            missing.state_text(),
            "missing: phone activation pending (no confirmation ID yet)"
        );
        assert!(
            missing.next_step.contains("`kmsconf plan` (host `kms02`")
                && missing
                    .next_step
                    .contains("env `KMSCONF_TEST_STATUS_CID_UNSET`"),
            "{}",
            missing.next_step
        );
        let json = serde_json::to_value(&status).expect("json");
        assert_eq!(json["missing"][0]["activation"], "phone", "{json:#}");
        assert_eq!(json["missing"][0]["confirmation_id_available"], false);
        assert!(!json.to_string().contains("VK7JG"), "{json:#}");

        // nothing read: nothing missing is claimed; an empty directory lacks both
        let failure = HostFailure::new(kmsconf_model::failure::FailureKind::Unreachable, "no");
        let unread = AdStatus::new(cfg, "dc1:389".into(), Err(failure));
        assert!(unread.missing.is_empty());
        let empty = AdState {
            objects: Vec::new(),
            ..state
        };
        let both = AdMissingStatus::of(cfg, &empty);
        let names: Vec<&str> = both.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["WS", "Phone"]);
        assert_eq!(both[0].confirmation_id_available, None);
        assert_eq!(both[0].state_text(), "missing");
        assert!(both[0]
            .next_step
            .starts_with("`kmsconf apply` creates it through host `kms01`"));
    }
}
