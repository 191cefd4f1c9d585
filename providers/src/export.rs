//! `kmsconf export`: the config that reproduces a host's discovered state, so an existing KMS host
//! can be brought under Git. Keys are never read back from a host (Windows keeps only their last
//! five characters), so each appears as an `{ env = "..." }` placeholder the user fills.
//!
//! What the config cannot say is written as comments (a KMS client key, settings that need an
//! activated KMS host, a pending restart), so that `plan` against the exported config shows no
//! changes wherever the config language can express the host.

use kmsconf_model::config::{ProductId, PublishDomain};
use kmsconf_model::settings::SettingValue;
use kmsconf_model::state::HostState;
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};

/// An exported config and the variables it expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub toml: String,
    /// `(variable, last five characters of the key it must hold)`.
    pub variables: Vec<(String, String)>,
}

/// A host name for the config from a computer name: lowercase, `-` for anything else.
pub fn host_name(computer_name: &str) -> String {
    let name: String = computer_name
        .trim()
        .chars()
        .map(|c| {
            if kmsconf_model::config::is_host_name_char(c) {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "kms".into()
    } else {
        name
    }
}

/// The environment variable an exported host key is read from: `KMS01_OFFICE_2019_HOST_KEY`.
pub fn key_variable(host: &str, product: ProductId) -> String {
    format!("{host}_{product}_HOST_KEY")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// `name` as a TOML key: bare when TOML allows it, else a quoted string (for comments; the
/// document quotes its own keys).
fn table_key(name: &str) -> String {
    toml_edit::Key::new(name).display_repr().to_string()
}

/// The exported document as providers add to it: tables in the order they come, each after
/// the comments written since the one before, and a blank line between.
pub struct ExportDoc {
    doc: DocumentMut,
    host: String,
    name: String,
    /// Comment lines waiting for the next table (or the end of the document).
    pending: String,
    tables: isize,
    variables: Vec<(String, String)>,
}

impl ExportDoc {
    /// The document of host `host`, reached as `target`, observed in `state`: the heading that
    /// says where it came from, the target and (for WinRM) the password reference. The providers
    /// then add their parts.
    pub(crate) fn for_host(host: &str, target: &str, state: &HostState) -> Self {
        let mut doc = Self::new(host);
        doc.comment_after(&format!(
            "Exported by kmsconf from `{target}` ({}, {}).\nHost keys are never read back from a host: set each variable below to the key installed\nthere (Windows shows only its last five characters, given beside it).",
            state.computer_name, state.os
        ));
        let mut table = Table::new();
        table.insert("target", toml_edit::value(target));
        doc.insert_table(&[], table);
        if target.starts_with("winrm://") || target.starts_with("winrm+https://") {
            // the password export itself read: a reference, never the value
            let mut winrm = Table::new();
            winrm.insert(
                "password",
                env_placeholder(WINRM_PASSWORD_VARIABLE, "the account's password"),
            );
            doc.insert_table(&["winrm"], winrm);
        }
        doc
    }

    fn new(host: &str) -> Self {
        Self {
            doc: DocumentMut::new(),
            host: host.to_string(),
            name: table_key(host),
            pending: String::new(),
            tables: 0,
            variables: Vec::new(),
        }
    }

    /// The host name as the config declares it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The host name as a TOML key, for comments that name a table.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds `table` at `hosts.HOST.PATH...`.
    pub fn insert_table(&mut self, path: &[&str], mut table: Table) {
        self.tables += 1;
        table.set_position(Some(self.tables));
        table
            .decor_mut()
            .set_prefix(format!("{}\n", std::mem::take(&mut self.pending)));
        let Some((last, parents)) = path.split_last() else {
            self.doc["hosts"] = implicit_table();
            let hosts = self.doc.get_mut("hosts").and_then(Item::as_table_mut);
            if let Some(hosts) = hosts {
                hosts.insert(&self.host, Item::Table(table));
            }
            return;
        };
        let mut parent = self
            .doc
            .get_mut("hosts")
            .and_then(|h| h.get_mut(self.host.as_str()))
            .and_then(Item::as_table_mut);
        for part in parents {
            parent =
                parent.and_then(|p| p.entry(part).or_insert_with(implicit_table).as_table_mut());
        }
        // every table on the way is one this document made
        if let Some(parent) = parent {
            parent.insert(last, Item::Table(table));
        }
    }

    /// A comment of its own, after a blank line.
    pub fn comment_block(&mut self, text: &str) {
        self.pending.push('\n');
        self.comment_after(text);
    }

    /// A comment right after what came before.
    pub fn comment_after(&mut self, text: &str) {
        for line in text.lines() {
            self.pending.push_str(&format!("# {line}\n"));
        }
    }

    /// Records that the config reads `variable`, which must hold a key ending in `partial`.
    pub fn variable(&mut self, variable: String, partial: String) {
        self.variables.push((variable, partial));
    }

    pub(crate) fn finish(mut self) -> Export {
        self.doc.set_trailing(std::mem::take(&mut self.pending));
        Export {
            toml: self.doc.to_string(),
            variables: self.variables,
        }
    }
}

/// A table with no keys of its own, so no header: `[hosts]` above `[hosts.kms01]`.
fn implicit_table() -> Item {
    let mut t = Table::new();
    t.set_implicit(true);
    Item::Table(t)
}

/// A setting's value as the config writes it.
pub fn value(v: &SettingValue) -> Item {
    match v {
        SettingValue::U16(n) => toml_edit::value(i64::from(*n)),
        SettingValue::U32(n) => toml_edit::value(i64::from(*n)),
        SettingValue::Bool(b) => toml_edit::value(*b),
        SettingValue::List(list) => {
            let entries: Array = list.iter().map(domain).collect();
            toml_edit::value(entries)
        }
    }
}

/// A publish list entry: the domain alone when priority and weight are the default 0.
fn domain(d: &PublishDomain) -> Value {
    if d.priority == 0 && d.weight == 0 {
        return Value::from(d.domain.as_str());
    }
    let mut t = InlineTable::new();
    t.insert("domain", Value::from(d.domain.as_str()));
    t.insert("priority", Value::from(i64::from(d.priority)));
    t.insert("weight", Value::from(i64::from(d.weight)));
    Value::InlineTable(t)
}

/// A list of strings.
pub fn strings(items: &[String]) -> Item {
    let list: Array = items.iter().map(String::as_str).collect();
    toml_edit::value(list)
}

/// `{ env = "VARIABLE" }` with a comment after it.
pub fn env_placeholder(variable: &str, comment: &str) -> Item {
    let mut t = InlineTable::new();
    t.insert("env", Value::from(variable));
    with_comment(Value::InlineTable(t), comment)
}

/// A string with a comment after it.
pub fn commented(text: &str, comment: &str) -> Item {
    with_comment(Value::from(text), comment)
}

fn with_comment(mut v: Value, comment: &str) -> Item {
    v.decor_mut().set_suffix(format!("   # {comment}"));
    Item::Value(v)
}

pub use kmsconf_model::config::WINRM_PASSWORD_VARIABLE;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::export;
    use kmsconf_model::state::{Channel, LicenseStatus, ProductState};

    #[test]
    fn a_winrm_host_exports_its_password_as_a_reference() {
        let state = HostState::fresh_windows_server("KMS01");
        let e = export("kms01", "winrm://CORP\\admin@kms01", &state);
        assert!(
            e.toml.contains("[hosts.kms01.winrm]")
                && e.toml
                    .contains("password = { env = \"KMSCONF_WINRM_PASSWORD\" }"),
            "{}",
            e.toml
        );
        let doc: DocumentMut = e.toml.parse().expect("valid TOML");
        assert_eq!(
            doc["hosts"]["kms01"]["target"].as_str(),
            Some("winrm://CORP\\admin@kms01")
        );
    }

    #[test]
    fn names_and_variables_are_valid_config_names() {
        assert_eq!(host_name("WIN-7Q2 LAB"), "win-7q2-lab");
        assert_eq!(
            key_variable("kms-01", ProductId::Office2019),
            "KMS_01_OFFICE_2019_HOST_KEY"
        );
    }

    #[test]
    fn a_host_that_is_not_a_kms_host_yet_exports_what_it_can_as_comments() {
        let state = HostState::fresh_windows_server("KMS01");
        let e = export("kms01", "lab:kms01.json", &state);
        assert!(e.variables.is_empty());
        assert!(
            e.toml.contains("KMS client key ending in 6VM33"),
            "{}",
            e.toml
        );
        assert!(e.toml.contains("settings are left out"), "{}", e.toml);
        assert!(!e.toml.contains("[hosts.kms01.service]"));
    }

    #[test]
    fn an_unactivated_host_key_exports_as_not_activated() {
        let mut state = HostState::fresh_windows_server("KMS01");
        state.products.insert(
            ProductId::Windows,
            ProductState {
                activation_id: None,
                partial_key: Some("6789B".into()),
                channel: Channel::KmsHost,
                license_status: LicenseStatus::Unlicensed,
                installation_id: None,
                grace_minutes: 0,
                current_count: None,
                required_count: None,
                requests: Default::default(),
                description: None,
            },
        );
        let e = export("kms01", "lab:kms01.json", &state);
        assert_eq!(
            e.variables,
            [("KMS01_WINDOWS_HOST_KEY".to_string(), "6789B".to_string())]
        );
        assert!(e.toml.contains("activation = \"none\""), "{}", e.toml);
    }
}
