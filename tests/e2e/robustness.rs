//! Property tests over everything kmsconf reads from a user or a host: config text, plan files
//! and lab state files. Whatever the input, loading returns a value or a clear error: never a
//! panic, and every config diagnostic points inside the file.

use std::path::Path;

use kmsconf_engine::config::Config;
use kmsconf_engine::Error;
use kmsconf_providers::KmsPlan;
use proptest::prelude::*;

/// A valid config using every section, to mutate.
const VALID: &str = r#"[hosts.kms01]
target = "lab:lab/kms01.json"
address = "kms01.corp.example"
depends_on = ["kms02"]

[hosts.kms01.service]
port = 1688
dns_publishing = true
publish_domains = ["corp.example", { domain = "x.example", priority = 10, weight = 50 }]
low_priority = false
activation_interval = 120
renewal_interval = 10080
host_caching = true

[hosts.kms01.firewall]
rule_groups = ["key-management-service", "file-and-printer-sharing"]
remote_addresses = ["10.0.0.0/8", "LocalSubnet", "10.1.0.1-10.1.0.9"]

[hosts.kms01.products.windows]
host_key = { env = "KMSCONF_PROPTEST_UNSET" }

[hosts.kms01.products.office-2019]
host_key = { file = "secrets/o.key" }
license_pack = "packs/office-2019"
activation = "phone"
confirmation_id = { env = "KMSCONF_PROPTEST_UNSET_CID" }

[hosts.kms02]
target = "ssh://admin@kms02.corp.example:22"
"#;

/// Loads `text` as a config and checks every diagnostic points at a real line and column.
fn check_config(text: &str) {
    match Config::parse(Path::new("kmsconf.toml"), text) {
        Ok(_) => {}
        Err(Error::Invalid(diagnostics)) => {
            assert!(!diagnostics.is_empty());
            let lines = text.split('\n').count();
            for d in diagnostics {
                assert!(
                    d.location.line >= 1 && d.location.line <= lines.max(1),
                    "{d}"
                );
                assert!(d.location.column >= 1, "{d}");
                assert!(!d.message.is_empty(), "{d}");
            }
        }
        Err(other) => panic!("a config error that names no place: {other}"),
    }
}

#[test]
fn the_valid_config_is_valid() {
    assert!(Config::parse(Path::new("kmsconf.toml"), VALID).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_a_config_or_a_placed_error(text in any::<String>()) {
        check_config(&text);
    }

    #[test]
    fn a_damaged_valid_config_is_a_config_or_a_placed_error(
        cut in 0..VALID.len(),
        len in 0usize..40,
        insert in prop::sample::select(vec!["", "\"", "[", "]", "=", "\n", "{", "}", ",", "-1", "99999999999999999999", "é", "\u{0}", "[[hosts]]"]),
    ) {
        let mut text = VALID.to_string();
        let start = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + len..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text.replace_range(start..end, insert);
        check_config(&text);
    }

    #[test]
    fn any_bytes_are_a_plan_file_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("plan.json");
        std::fs::write(&path, &bytes).expect("write");
        let _ = KmsPlan::load(&path);
    }

    #[test]
    fn any_bytes_are_a_lab_file_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("lab.json");
        std::fs::write(&path, &bytes).expect("write");
        let _ = kmsconf_providers::targets::lab::load(&path);
    }
}
