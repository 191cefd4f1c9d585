//! `kmsconf validate`: every error as FILE:LINE:COL, no host contacted. Each run is snapshotted
//! whole with its config (`tests/e2e/snapshots/validate-*.snap`).

use crate::common::*;

/// Runs `kmsconf validate` on `config` and snapshots the run as `validate-NAME`; it must not
/// contact a host.
fn validate(name: &str, config: &str, code: i32) {
    let p = Project::new();
    p.write("kmsconf.toml", config);
    let r = p.ok(&["validate"], code);
    assert!(!p.path("lab").exists(), "validate must not contact a host");
    let shown = format!("----- kmsconf.toml -----\n{config}{}", r.shown(&p));
    snapshot(&format!("validate-{name}"), &shown);
}

#[test]
fn a_valid_config_passes_without_touching_a_host() {
    validate("valid", &single_host(""), 0);
}

#[test]
fn unknown_keys_are_errors_with_their_position() {
    validate(
        "unknown-field",
        "[hosts.kms01]\ntarget = \"lab:a.json\"\nprot = 1\n",
        1,
    );
    validate(
        "unknown-top-level-key",
        "[host.kms01]\ntarget = \"lab:a.json\"\n",
        1,
    );
}

#[test]
fn wrong_types_are_errors_with_their_position() {
    validate(
        "wrong-type",
        "[hosts.kms01]\ntarget = \"lab:a.json\"\n[hosts.kms01.service]\nport = \"1688\"\n",
        1,
    );
}

#[test]
fn out_of_range_intervals_and_ports_are_all_reported() {
    validate(
        "out-of-range",
        "[hosts.kms01]\ntarget = \"lab:a.json\"\n[hosts.kms01.service]\nport = 70000\nactivation_interval = 5\nrenewal_interval = 50000\n",
        1,
    );
}

#[test]
fn malformed_product_keys_are_errors_without_the_key() {
    let mut p = Project::new();
    p.env("BAD_KEY", "BCDFG-HJKMP-QRTVW-XY234-6789");
    p.write("kmsconf.toml", "[hosts.kms01]\ntarget = \"lab:a.json\"\n[hosts.kms01.products.windows]\nhost_key = { env = \"BAD_KEY\" }\n");
    let r = p.ok(&["validate"], 1);
    assert!(!r.all().contains("HJKMP"), "the key is never shown: {r:?}");
    snapshot_run("validate-malformed-key-from-env", &p, &r);
    validate(
        "malformed-key-with-typographic-dash",
        "[hosts.kms01]\ntarget = \"lab:a.json\"\n[hosts.kms01.products.windows]\nhost_key = \"BCDFG–HJKMP-QRTVW-XY234-6789B\"\n",
        1,
    );
}

#[test]
fn unknown_product_names_are_errors() {
    validate(
        "unknown-product",
        "[hosts.kms01]\ntarget = \"lab:a.json\"\n[hosts.kms01.products.office-2007]\nhost_key = { env = \"K\" }\n",
        1,
    );
}

#[test]
fn dependency_cycles_are_errors() {
    validate(
        "dependency-cycle",
        "[hosts.a]\ntarget = \"lab:a.json\"\ndepends_on = [\"b\"]\n[hosts.b]\ntarget = \"lab:b.json\"\ndepends_on = [\"a\"]\n",
        1,
    );
    validate(
        "unknown-dependency",
        "[hosts.a]\ntarget = \"lab:a.json\"\ndepends_on = [\"zz\"]\n",
        1,
    );
}

#[test]
fn duplicate_hosts_are_errors() {
    validate(
        "duplicate-host",
        "[hosts.kms01]\ntarget = \"lab:a.json\"\n[hosts.kms01]\ntarget = \"lab:b.json\"\n",
        1,
    );
    validate(
        "same-target",
        "[hosts.a]\ntarget = \"lab:x.json\"\n[hosts.b]\ntarget = \"lab:./x.json\"\n",
        1,
    );
}

#[test]
fn every_error_is_reported_in_one_run() {
    validate(
        "every-error",
        "[hosts.a]\ntarget = \"nope\"\n[hosts.a.service]\nport = 0\n[hosts.b]\ntarget = \"lab:b.json\"\nbogus = true\n[hosts.c]\ntarget = \"lab:c.json\"\n[hosts.c.firewall]\nrule_groups = [\"key-management-service\"]\nremote_addresses = [\"10.0.0.0/33\"]\n",
        1,
    );
}

#[test]
fn a_syntax_error_has_its_position() {
    validate("syntax-error", "[hosts.kms01\ntarget = 1\n", 1);
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let p = Project::new();
    let r = p.ok(&["validate"], 1);
    snapshot_run("validate-missing-config", &p, &r);
}
