//! `[fleet.activation_ids]`: the activation IDs a fleet's clients ask with, each named by the
//! user with the edition or product it is. kmsconf ships no table of client activation IDs
//! (Microsoft publishes none), so a request is named by this table first, then by the lab's own
//! IDs ([`catalog::asked_for`]); an ID named nowhere stays unknown.

use std::collections::BTreeMap;

use crate::catalog::{self, Edition};
use crate::ids::{self, ProductId};

/// What a client asked for: the KMS host product that activates it, and its edition when the
/// name is one.
pub type AskedFor = (ProductId, Option<&'static Edition>);

/// Activation IDs (in lower case) with the edition or product id the user named each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivationNames {
    names: BTreeMap<String, String>,
}

static NONE: ActivationNames = ActivationNames {
    names: BTreeMap::new(),
};

impl ActivationNames {
    /// The empty table, for a config without `[fleet.activation_ids]`.
    pub fn none() -> &'static Self {
        &NONE
    }

    /// Names `activation_id` (any case, braces allowed); `false` when it is not a GUID or
    /// `name` is no edition or product id.
    pub fn insert(&mut self, activation_id: &str, name: &str) -> bool {
        match (ids::guid(activation_id), Self::named(name)) {
            (Some(id), Some(_)) => {
                self.names.insert(id, name.to_string());
                true
            }
            _ => false,
        }
    }

    /// The name the user gave `activation_id`.
    pub fn name(&self, activation_id: &str) -> Option<&str> {
        let id = ids::guid(activation_id)?;
        self.names.get(&id).map(String::as_str)
    }

    /// What a client asking with `activation_id` asked for: by this table first, then by the
    /// lab's own IDs; `None` when neither names it.
    pub fn asked_for(&self, activation_id: &str) -> Option<AskedFor> {
        self.name(activation_id)
            .and_then(Self::named)
            .or_else(|| catalog::asked_for(activation_id))
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// What an edition id or a product id, as `[fleet.activation_ids]` takes it, names.
    pub fn named(name: &str) -> Option<AskedFor> {
        if let Some(e) = catalog::edition(name) {
            return Some((e.product, Some(e)));
        }
        ProductId::ALL
            .into_iter()
            .find(|p| p.id() == name)
            .map(|p| (p, None))
    }

    /// Every name `[fleet.activation_ids]` takes: the edition ids, then the product ids.
    pub fn known_names() -> Vec<&'static str> {
        let editions = catalog::all_editions().iter().map(|e| e.id.as_str());
        editions.chain(ProductId::ALL.map(ProductId::id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAKE: &str = "00000000-0000-4000-8000-000000000001";

    #[test]
    fn the_table_names_first_then_the_lab_and_else_nothing() {
        let mut names = ActivationNames::default();
        assert!(names.insert(&FAKE.to_ascii_uppercase(), "windows-enterprise"));
        // a lab ID the user renamed: the table wins
        let lab = catalog::lab_activation_id("windows-pro");
        assert!(names.insert(&format!("{{{lab}}}"), "office-2024"));
        let of = |id: &str| {
            names
                .asked_for(id)
                .map(|(p, e)| (p, e.map(|e| e.id.as_str())))
        };
        assert_eq!(
            of(FAKE),
            Some((ProductId::Windows, Some("windows-enterprise")))
        );
        assert_eq!(
            of(&lab.to_ascii_uppercase()),
            Some((ProductId::Office2024, None))
        );
        let server = catalog::lab_activation_id("windows-server-2022-datacenter");
        assert_eq!(
            of(&server),
            Some((ProductId::Windows, Some("windows-server-2022-datacenter")))
        );
        assert_eq!(of("00000000-0000-4000-8000-000000000002"), None);
        assert!(ActivationNames::none().asked_for(FAKE).is_none());
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn only_guids_and_known_names_go_in() {
        let mut names = ActivationNames::default();
        assert!(!names.insert("1234567890", "windows-enterprise"));
        assert!(!names.insert(FAKE, "windows-11-enterprise"));
        assert!(names.is_empty());
        assert!(ActivationNames::named("windows")
            .is_some_and(|(p, e)| p == ProductId::Windows && e.is_none()));
        let all = ActivationNames::known_names();
        assert!(all.contains(&"windows-enterprise") && all.contains(&"office-2010"));
        assert_eq!(
            catalog::nearest("windows-11-enterprise", &all).first(),
            Some(&"windows-enterprise")
        );
    }
}
