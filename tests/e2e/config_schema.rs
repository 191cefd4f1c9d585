//! The published config schema is as strict as `validate` wherever a JSON Schema can say it:
//! every corpus config `validate` rejects fails the schema too, except those whose reason a
//! schema cannot express (listed below with the reason).

use std::path::Path;

use serde_json::Value;

/// Corpus configs the schema accepts although `validate` rejects them, and why a JSON Schema
/// cannot say it.
const NOT_EXPRESSIBLE: &[(&str, &str)] = &[
    (
        "15-target-local-non-windows.toml",
        "depends on the OS kmsconf runs on",
    ),
    (
        "80-target-replay-missing.toml",
        "whether the recording is there: read from disk, not matched",
    ),
    (
        "17-address-invalid.toml",
        "a DNS name or an IP address (IPv6 forms): parsed, not matched",
    ),
    (
        "30-publish-domain-invalid.toml",
        "a DNS name's label rules: parsed, not matched",
    ),
    (
        "32-publish-domain-twice.toml",
        "unique ignoring case, which uniqueItems cannot do",
    ),
    (
        "37-remote-address-bad.toml",
        "an IP address, subnet or range: parsed, not matched",
    ),
    (
        "38-remote-address-range-backwards.toml",
        "compares two addresses",
    ),
    (
        "40-remote-address-without-kms-group.toml",
        "depends on another key's items",
    ),
    (
        "66-profiles-without-rule-groups.toml",
        "depends on another key's items",
    ),
    (
        "43-product-key-malformed-literal.toml",
        "a literal secret's form depends on what it is for",
    ),
    (
        "44-product-key-bad-letter.toml",
        "a literal secret's form depends on what it is for",
    ),
    (
        "45-product-key-em-dash.toml",
        "a literal secret's form depends on what it is for",
    ),
    (
        "50-confirmation-id-without-phone.toml",
        "depends on another key's value",
    ),
    (
        "51-confirmation-id-malformed.toml",
        "a literal secret's form depends on what it is for",
    ),
    (
        "52-license-pack-on-windows.toml",
        "depends on the product, a key of the enclosing table",
    ),
    ("54-depends-on-unknown.toml", "refers to other hosts"),
    (
        "55-depends-on-self.toml",
        "refers to the enclosing host's name",
    ),
    ("56-depends-on-cycle-3.toml", "a cycle across hosts"),
    ("57-duplicate-lab-target.toml", "compares hosts"),
    ("58-duplicate-ssh-target.toml", "compares hosts"),
    ("79-duplicate-winrm-target.toml", "compares hosts"),
    (
        "62-duplicate-host-name-case.toml",
        "unique ignoring case, across keys",
    ),
    ("86-adba-unknown-via.toml", "compares with the hosts"),
    (
        "87-adba-duplicate-name.toml",
        "unique ignoring case, across array items",
    ),
    (
        "88-adba-phone-without-confirmation-id.toml",
        "a key required by another's value: not generated",
    ),
    (
        "97-adba-confirmation-id-malformed.toml",
        "a literal secret's form depends on what it is for",
    ),
    (
        "89-adba-server-not-ldap-url.toml",
        "an LDAP URL (IPv6 forms, the port's range): parsed, not matched",
    ),
    (
        "92-fleet-activation-id-twice.toml",
        "unique ignoring case, across keys",
    ),
    (
        "66-long-value-cut.toml",
        "a DNS name or an IP address (IPv6 forms): parsed, not matched",
    ),
];

fn schema() -> (boon::Schemas, boon::SchemaIndex) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/kmsconf.schema.json");
    let mut schemas = boon::Schemas::new();
    let index = boon::Compiler::new()
        .compile(path.to_str().expect("a UTF-8 path"), &mut schemas)
        .expect("schema/kmsconf.schema.json compiles");
    (schemas, index)
}

#[test]
fn every_corpus_config_rejected_for_a_schema_reason_fails_the_schema() {
    let (schemas, index) = schema();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/config");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut passed = Vec::new();
    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        // a TOML syntax error never reaches a schema
        let Ok(doc) = toml::from_str::<toml::Table>(&std::fs::read_to_string(path).expect("read"))
        else {
            continue;
        };
        let json: Value = serde_json::to_value(doc).expect("TOML as JSON");
        let exempt = NOT_EXPRESSIBLE.iter().any(|(n, _)| *n == name);
        match (schemas.validate(&json, index).is_ok(), exempt) {
            (true, false) => passed.push(name.to_string()),
            (false, true) => panic!("{name} fails the schema now: remove it from NOT_EXPRESSIBLE"),
            _ => {}
        }
    }
    assert!(
        passed.is_empty(),
        "the schema accepts these configs that validate rejects:\n{}",
        passed.join("\n")
    );
}

#[test]
fn valid_winrm_hosts_pass_the_schema() {
    let (schemas, index) = schema();
    let doc: toml::Table = toml::from_str(crate::validate::WINRM_HOSTS).expect("TOML");
    let json: Value = serde_json::to_value(doc).expect("TOML as JSON");
    if let Err(e) = schemas.validate(&json, index) {
        panic!("the schema refuses a valid config: {e:#}");
    }
}
