//! Key coverage (`data/coverage.toml`, sources named there): which client families each KMS host
//! key group (CSVLK group) activates, which host operating systems its key installs on, and the
//! updates a host needs for clients newer than itself. Read by `[fleet] clients` validation, the
//! `client-coverage` doctor check and `status`; it knows nothing of a particular host.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::tables::{yes, Table, TableError};

/// An operating system a KMS host runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostOs {
    pub id: String,
    /// How `Win32_OperatingSystem.Caption` names it, without `Microsoft `.
    pub caption: String,
    pub server: bool,
    /// Age order: "at least" compares it.
    pub rank: u32,
}

/// A family of client editions Microsoft's tables list together; what `[fleet] clients` names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFamily {
    pub id: String,
    pub name: String,
    pub source: String,
    #[serde(default = "yes")]
    pub verified: bool,
}

/// A KMS host key group (CSVLK group).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostKeyGroup {
    pub id: String,
    pub name: String,
    /// The config's product id (`windows`, `office-2024`) the key is installed for.
    pub product: String,
    /// For a Windows group: the text of `SoftwareLicensingProduct.Description` that names it.
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default = "yes")]
    pub channel_verified: bool,
    /// Host operating systems (ids of `[[os]]`) the key installs on.
    pub hosted_on: Vec<String>,
    /// Client families (ids of `[[client]]`) a host with this key activates.
    pub activates: Vec<String>,
    pub source: String,
    #[serde(default = "yes")]
    pub verified: bool,
}

/// An update a host needs before it activates some clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredUpdate {
    pub host_os: String,
    pub clients: Vec<String>,
    pub update: String,
    pub source: String,
}

/// Which Windows licenses Office through its own Software Licensing service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficeLicensing {
    /// `major.minor` of the oldest such Windows.
    pub min_windows_version: String,
    pub source: String,
    #[serde(default = "yes")]
    pub verified: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coverage {
    pub sources: BTreeMap<String, String>,
    pub office_licensing: OfficeLicensing,
    pub os: Vec<HostOs>,
    pub client: Vec<ClientFamily>,
    pub host_key: Vec<HostKeyGroup>,
    pub update: Vec<RequiredUpdate>,
}

static TABLE: Table<Coverage> = Table::new(
    "model/data/coverage.toml",
    include_str!("../data/coverage.toml"),
    toml::from_str,
);

/// The table, loaded once; or why it does not read (a defect of the build: the tests below parse
/// it). [`crate::load_tables`] calls this before anything else runs.
pub fn load() -> Result<&'static Coverage, TableError> {
    TABLE.load()
}

/// The table, loaded once. A table that does not read stops the caller
/// with its file, line and column (see [`crate::tables`]); the binary has loaded it first.
pub fn coverage() -> &'static Coverage {
    TABLE.get()
}

/// Every client family id, in the table's order (the config schema's enum of `[fleet] clients`).
pub fn client_ids() -> Vec<String> {
    coverage().client.iter().map(|c| c.id.clone()).collect()
}

impl Coverage {
    pub fn client(&self, id: &str) -> Option<&ClientFamily> {
        self.client.iter().find(|c| c.id == id)
    }

    pub fn os(&self, id: &str) -> Option<&HostOs> {
        self.os.iter().find(|o| o.id == id)
    }

    /// The operating system a caption names (`Microsoft Windows Server 2022 Datacenter`): the
    /// row whose caption is the longest prefix, so `2012 R2` wins over `2012`.
    pub fn os_of_caption(&self, caption: &str) -> Option<&HostOs> {
        let caption = caption.trim();
        let caption = caption.strip_prefix("Microsoft ").unwrap_or(caption);
        self.os
            .iter()
            .filter(|o| {
                caption.starts_with(&o.caption)
                    && caption[o.caption.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| c == ' ')
            })
            .max_by_key(|o| o.caption.len())
    }

    /// The group of an installed KMS host key of `product` (a config product id): an Office
    /// key's by its product (its group has no channel text), a Windows key's by the channel text
    /// in its Description. `None` when the Description names no known group.
    pub fn group_of(&self, product: &str, description: Option<&str>) -> Option<&HostKeyGroup> {
        let groups = || self.host_key.iter().filter(move |g| g.product == product);
        if let Some(by_product) = groups().find(|g| g.channel.is_none()) {
            return Some(by_product);
        }
        let description = description?;
        groups().find(|g| {
            g.channel
                .as_deref()
                .is_some_and(|c| description.split([' ', ',']).any(|word| word == c))
        })
    }

    /// The groups whose key activates `client`, newest first (the table's order).
    pub fn groups_for(&self, client: &str) -> Vec<&HostKeyGroup> {
        self.host_key
            .iter()
            .filter(|g| g.activates.iter().any(|c| c == client))
            .collect()
    }

    /// The updates a host running `host_os` needs to activate `client`.
    pub fn updates_for(&self, host_os: &str, client: &str) -> Vec<&RequiredUpdate> {
        self.update
            .iter()
            .filter(|u| u.host_os == host_os && u.clients.iter().any(|c| c == client))
            .collect()
    }
}

impl HostKeyGroup {
    /// Whether the key installs on `os` (an `[[os]]` id).
    pub fn installs_on(&self, os: &str) -> bool {
        self.hosted_on.iter().any(|h| h == os)
    }

    /// The host requirement in words: `Windows Server 2025, Windows Server 2022 or Windows
    /// Server 2019`.
    pub fn hosts_in_words(&self) -> String {
        let names: Vec<String> = self
            .hosted_on
            .iter()
            .map(|id| {
                coverage()
                    .os(id)
                    .map_or_else(|| id.clone(), |o| o.caption.clone())
            })
            .collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.concat(),
        }
    }
}

#[cfg(test)]
mod tests;
