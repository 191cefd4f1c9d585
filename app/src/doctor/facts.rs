//! `windows-facts`: what the host showed against kmsconf's Windows facts table, the same
//! readings `plan` warns of ([`kmsconf_model::surprise`]).

use kmsconf_model::state::HostState;
use kmsconf_model::surprise::surprises;

use super::{Check, Verdict, WINDOWS_FACTS};

/// One warning per fact the host contradicts (the fact as its subject), or one ok.
pub fn windows_facts(host: &str, state: &HostState) -> Vec<Check> {
    let found = surprises(state);
    if found.is_empty() {
        return vec![Check::new(
            host,
            WINDOWS_FACTS,
            Verdict::Ok,
            "nothing the host shows contradicts kmsconf's Windows facts (model/data/windows.toml)",
        )];
    }
    found
        .iter()
        .map(|s| {
            Check::new(host, WINDOWS_FACTS, Verdict::Warning, crate::surprises::message(s))
                .about(s.fact.clone())
                .fix("kmsconf's table may be wrong for this host: record a read-only plan (`KMSCONF_RECORD=DIR kmsconf plan`, see \"Recording a run for a bug report\" in the book) and attach it to a bug report; `kmsconf apply --accept-surprises` makes the changes that rely on it anyway")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contradicted_fact_is_a_warning_about_that_fact() {
        let mut state = HostState::fresh_windows_server("KMS01");
        let checks = windows_facts("kms01", &state);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].status, Verdict::Ok);
        state.readings.product_key_channel = Some(false);
        let checks = windows_facts("kms01", &state);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].status, Verdict::Warning);
        assert_eq!(
            checks[0].subject.as_deref(),
            Some("class SoftwareLicensingProduct.ProductKeyChannel")
        );
        assert!(
            checks[0].detail.contains("the host shows no such property"),
            "{:?}",
            checks[0]
        );
        assert!(checks[0]
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("KMSCONF_RECORD=DIR kmsconf plan")));
    }
}
