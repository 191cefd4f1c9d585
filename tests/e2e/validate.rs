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

/// WinRM hosts in every form the config takes: a domain account over HTTP, a UPN over HTTPS with
/// Basic and a CA file, and a retired host (which keeps its `winrm` table) reached by Kerberos at
/// an address, which validate warns about. It passes the config schema too (`config_schema.rs`).
pub const WINRM_HOSTS: &str = r#"[hosts.kms01]
target = "winrm://CORP\\admin@kms01.corp.example"
[hosts.kms01.winrm]
password = { env = "KMS01_PASSWORD" }
auth = "ntlm"
operation_timeout = 60

[hosts.kms02]
target = "winrm+https://svc-kms@corp.example@kms02.corp.example:15986"
[hosts.kms02.winrm]
password = { file = "secrets/kms02.password" }
auth = "basic"
ca_file = "certs/corp-ca.pem"

[hosts.kms03]
target = 'winrm+https://CORP\admin@[fd00::3]'
state = "retired"
winrm = { password = { env = "KMS03_PASSWORD" }, auth = "kerberos" }
"#;

#[test]
fn winrm_hosts_validate_with_their_settings_and_no_host_contacted() {
    validate("winrm", WINRM_HOSTS, 0);
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
    // from a variable, a malformed key fails only the host that needs it (at plan time), as a
    // missing one does; validate warns
    let r = p.ok(&["validate"], 0);
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

/// Three errors and a literal secret's warning, each pointing at a different kind of token.
const EXCERPTS: &str = "[hosts.kms01]\ntarget = \"lab:a.json\"\ndepends_on = [\"kms00\"]\n\n[hosts.kms01.service]\nport = 70000\nactivation_interval = 5   # minutes\n\n[hosts.kms01.products.windows]\nhost_key = \"BCDFG-HJKMP-QRTVW-XY234-6789B\"\n";

#[test]
fn errors_show_their_line_with_a_caret_under_the_first_line_unchanged() {
    let p = Project::new();
    p.write("kmsconf.toml", EXCERPTS);
    let r = p.ok(&["validate"], 1);
    snapshot(
        "validate-excerpts.txt",
        &format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            r.code, r.stdout, r.stderr
        ),
    );
    // each diagnostic still starts with its `FILE:LINE:COL: message` line
    assert!(r.stderr.starts_with("kmsconf.toml:3:15: host `kms01` depends on `kms00`, which is not a host in this file\n"), "{r:?}");
    // the literal key is masked in the excerpt, as everywhere else
    assert!(!r.all().contains("HJKMP"), "{r:?}");
}

#[test]
fn a_runtime_error_declared_in_the_config_shows_its_line() {
    let p = Project::new();
    p.write(
        "kmsconf.toml",
        &single_host("").replace("{ env = \"KMS_HOST_KEY\" }", &format!("\"{WINDOWS_KEY}\"")),
    );
    let r = p.ok(&["plan", "--out", "kmsconf.plan"], 1);
    let error = r.stderr.split("error: ").nth(1).expect("an error");
    assert_eq!(
        error,
        "cannot save a plan that needs a secret written in the config (declared at kmsconf.toml:5:12): a plan file holds only references; use `{ env = \"VAR\" }` or `{ file = \"path\" }`\n  |\n5 | host_key = \"*****************************\"\n  |            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n",
        "{r:?}"
    );
}

/// stdout of `kmsconf validate` run on a pseudo-terminal (`script`, util-linux).
#[cfg(unix)]
fn validate_on_a_terminal(p: &Project, no_color: bool) -> String {
    let mut cmd = std::process::Command::new("script");
    cmd.args([
        "-qec",
        &format!("{} validate", env!("CARGO_BIN_EXE_kmsconf")),
        "/dev/null",
    ])
    .current_dir(p.path(""))
    .env_remove("NO_COLOR");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let out = cmd.output().expect("script");
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

#[cfg(unix)] // `script` makes the terminal
#[test]
fn excerpts_are_coloured_on_a_terminal_only_and_never_with_no_color() {
    let p = Project::new();
    p.write("kmsconf.toml", EXCERPTS);
    let coloured = validate_on_a_terminal(&p, false);
    assert!(coloured.contains("\x1b["), "{coloured:?}");
    assert!(
        coloured.starts_with("kmsconf.toml:3:15: host `kms01` depends on `kms00`, which is not a host in this file\n"),
        "the first line stays plain: {coloured:?}"
    );
    let plain = validate_on_a_terminal(&p, true);
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert_eq!(plain, p.ok(&["validate"], 1).stderr);
    assert!(!p.run(&["validate"]).stderr.contains('\x1b'));
}

#[test]
fn format_github_prints_workflow_commands_escaped() {
    let p = Project::new();
    p.write("ci,1/kms:conf.toml", EXCERPTS);
    let r = p.ok(
        &["validate", "-c", "ci,1/kms:conf.toml", "--format", "github"],
        1,
    );
    let file = "file=ci%2C1/kms%3Aconf.toml";
    assert_eq!(
        r.stdout,
        format!(
            "::error {file},line=3,col=15::host `kms01` depends on `kms00`, which is not a host in this file\n\
             ::error {file},line=6,col=8::`port` = 70000 is out of range: Windows accepts 1 to 65535\n\
             ::error {file},line=7,col=23::`activation_interval` = 5 is out of range: Windows accepts 15 to 43200 minutes (30 days)\n\
             ::warning {file},line=10,col=12::the host key of `windows` is written in the config; use `{{ env = \"VAR\" }}` or `{{ file = \"path\" }}` so it stays out of Git\n"
        ),
        "{r:?}"
    );
    assert_eq!(r.stderr, "");
    p.write("ok.toml", &single_host(""));
    let r = p.ok(&["validate", "-c", "ok.toml", "--format", "github"], 0);
    assert_eq!(r.stdout, "ok.toml: valid (1 host)\n");
    let r = p.ok(&["validate", "-c", "missing.toml", "--format", "github"], 1);
    snapshot_run("validate-github-missing-config", &p, &r);
}
