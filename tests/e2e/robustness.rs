//! Property tests over everything kmsconf reads from a user or a host: config text, plan files
//! and lab state files. Whatever the input, loading returns a value or a clear error: never a
//! panic, and every config diagnostic points inside the file.

use std::path::Path;

use kmsconf_model::config::Config;
use kmsconf_model::Error;
use kmsconf_model::KmsPlan;
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

/// A real saved plan (made against a fresh lab host) as JSON text, to damage.
fn valid_plan_text() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tmp");
        let config = "[hosts.kms01]\ntarget = \"lab:lab.json\"\n[hosts.kms01.service]\nport = 1689\n[hosts.kms01.firewall]\nrule_groups = [\"key-management-service\"]\n[hosts.kms01.products.windows]\nhost_key = { env = \"KMSCONF_PROPTEST_UNSET\" }\n";
        let path = dir.path().join("kmsconf.toml");
        let config = Config::parse(&path, config).expect("config");
        let host = &config.hosts["kms01"];
        let connect = kmsconf_targets::Connect::default();
        let target = kmsconf_targets::open_host("kms01", &host.target, &connect).expect("lab");
        let discovery = target.discover().expect("discover");
        // the key's variable is unset, so plan the observed state with the settings only
        let mut host = host.clone();
        host.products.clear();
        host.service = Default::default();
        let plan = kmsconf_providers::registry::plan_host(&host, discovery).expect("plan");
        let plan = KmsPlan::new(path, dir.path().to_path_buf(), vec![plan]);
        let file = dir.path().join("plan.json");
        plan.save(&file, None).expect("save");
        std::fs::read_to_string(file).expect("read")
    })
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
        if let Err(e) = KmsPlan::load(&path, None) {
            prop_assert!(e.to_string().contains("plan.json"), "the error names the file: {}", e);
        }
    }

    #[test]
    fn a_damaged_plan_file_is_a_plan_or_an_error(
        cut in 0usize..4000,
        len in 0usize..30,
        insert in prop::sample::select(vec!["", "\"", "[", "]", "{", "}", ",", "null", "-1", "1e999", "\"op\": \"x\""]),
    ) {
        let mut text = valid_plan_text().to_string();
        let start = (0..=cut.min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + len..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text.replace_range(start..end, insert);
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("plan.json");
        std::fs::write(&path, &text).expect("write");
        if let Err(e) = KmsPlan::load(&path, None) {
            prop_assert!(e.to_string().contains("plan.json"), "the error names the file: {}", e);
        }
    }

    #[test]
    fn any_bytes_are_a_lab_file_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("lab.json");
        std::fs::write(&path, &bytes).expect("write");
        if let Err(e) = kmsconf_targets::lab::load(&path) {
            prop_assert!(e.to_string().contains("lab.json"), "the error names the file: {}", e);
        }
    }
}
