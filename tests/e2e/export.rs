//! `kmsconf export`: the exported config reproduces the host, so `plan` against it shows no
//! changes; keys appear only as placeholders.

use crate::common::*;

/// A key that is not `WINDOWS_KEY` but ends in the same five characters, as the key a user
/// puts in the exported variable would be the real one: only the last five are compared.
const SAME_ENDING: &str = "PQRTV-WXY23-46789-BCDFG-6789B";

const CONVERGED: &str = r#"
[hosts.kms01.service]
port = 1689
activation_interval = 60
publish_domains = ["corp.example", { domain = "branch.example", priority = 10, weight = 50 }]
low_priority = true

[hosts.kms01.firewall]
rule_groups = ["key-management-service", "file-and-printer-sharing"]
remote_addresses = ["10.0.0.0/8"]
"#;

/// Exports the lab host into `kmsconf.toml` (replacing the config) and returns the export run.
fn export_over_config(p: &Project, extra: &[&str]) -> Run {
    let mut args = vec!["export", "--target", "lab:lab/kms01.json"];
    args.extend(extra);
    let r = p.ok(&args, 0);
    p.write("kmsconf.toml", &r.stdout);
    r
}

#[test]
fn an_exported_converged_host_plans_no_changes() {
    let mut p = Project::new();
    p.write("kmsconf.toml", &single_host(CONVERGED));
    p.ok(&["apply", "--auto-approve"], 0);
    let r = export_over_config(&p, &[]);
    // the config on stdout, and on stderr the variable to set with the key
    snapshot_run("export-kms01.toml", &p, &r);
    assert!(
        !r.all().contains("HJKMP") && !r.all().contains("QRTVW"),
        "{r:?}"
    );
    p.unset("KMS_HOST_KEY")
        .env("KMS01_WINDOWS_HOST_KEY", SAME_ENDING);
    p.ok(&["validate"], 0);
    let plan = p.ok(&["plan", "--detailed-exitcode"], 0);
    snapshot_run("export-kms01-replan", &p, &plan);
}

/// A host name the config allows but TOML cannot write bare (`kms.corp`) is quoted, so the
/// export still reproduces the host instead of declaring host `kms` with a key `corp`.
#[test]
fn a_dotted_host_name_exports_as_a_quoted_key() {
    let mut p = Project::new();
    p.write("kmsconf.toml", &single_host(CONVERGED));
    p.ok(&["apply", "--auto-approve"], 0);
    let r = export_over_config(&p, &["--name", "kms.corp"]);
    snapshot_run("export-dotted-host-name", &p, &r);
    p.unset("KMS_HOST_KEY")
        .env("KMS_CORP_WINDOWS_HOST_KEY", SAME_ENDING);
    p.ok(&["validate"], 0);
    let plan = p.ok(&["plan", "--detailed-exitcode"], 0);
    snapshot_run("export-dotted-host-name-replan", &p, &plan);
}

#[test]
fn a_pending_phone_activation_exports_as_not_activated_and_plans_no_changes() {
    let mut p = Project::new();
    p.env("OFFICE_2019_KEY", OFFICE_KEY);
    p.write("packs/office-2019/README.txt", "license pack");
    p.write(
        "kmsconf.toml",
        &single_host(
            "\n[hosts.kms01.products.office-2019]\nhost_key = { env = \"OFFICE_2019_KEY\" }\nlicense_pack = \"packs/office-2019\"\nactivation = \"phone\"\n",
        ),
    );
    p.ok(&["apply", "--auto-approve"], 0);
    let r = export_over_config(&p, &["--name", "kms-a"]);
    snapshot_run("export-pending-phone-activation", &p, &r);
    p.env("KMS_A_WINDOWS_HOST_KEY", SAME_ENDING)
        .env("KMS_A_OFFICE_2019_HOST_KEY", OFFICE_KEY);
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn a_fresh_host_exports_comments_for_what_the_config_cannot_say() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    p.ok(&["plan"], 0);
    let r = export_over_config(&p, &[]);
    snapshot_run("export-fresh-host", &p, &r);
    assert!(!r.stdout.contains("host_key"), "{r:?}");
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn export_refuses_what_it_cannot_read() {
    let p = Project::new();
    let r = p.ok(&["export", "--target", "lab:lab/none.json"], 1);
    snapshot_run("export-no-lab-host", &p, &r);
    assert!(
        !p.path("lab/none.json").exists(),
        "export must not create a lab host"
    );
    if !cfg!(windows) {
        let r = p.ok(&["export", "--target", "local"], 1);
        snapshot_run("export-local-not-on-windows", &p, &r);
    }
    let r = p.ok(&["export", "--target", "ftp://x"], 1);
    snapshot_run("export-unknown-target", &p, &r);
    let r = p.ok(&["export", "--target", "lab:x.json", "--name", "a b"], 1);
    snapshot_run("export-bad-host-name", &p, &r);
}

/// A host that does not publish itself and has no publish list exports without a
/// `publish_domains = []` line: with `dns_publishing = false` that line only drew a `validate`
/// warning ("has no effect") on a file kmsconf itself wrote.
#[test]
fn a_host_without_dns_publishing_exports_a_config_that_validates_without_warnings() {
    let mut p = Project::new();
    p.write(
        "kmsconf.toml",
        &single_host("\n[hosts.kms01.service]\ndns_publishing = false\n"),
    );
    p.ok(&["apply", "--auto-approve"], 0);
    let r = export_over_config(&p, &[]);
    snapshot_run("export-without-dns-publishing", &p, &r);
    assert!(!r.stdout.contains("publish_domains"), "{r:?}");
    p.unset("KMS_HOST_KEY")
        .env("KMS01_WINDOWS_HOST_KEY", SAME_ENDING);
    let v = p.ok(&["validate"], 0);
    assert!(!v.stderr.contains("warning"), "{v:?}");
    let plan = p.ok(&["plan", "--detailed-exitcode"], 0);
    snapshot_run("export-without-dns-publishing-replan", &p, &plan);
}
