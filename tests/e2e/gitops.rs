//! The GitOps flow: `show` of a saved plan, the markdown summary for pull requests, shell
//! completions.

use std::process::Command;

use crate::common::*;

/// `plan --out` and `show` of that file print the same thing, in every format.
#[test]
fn show_prints_a_saved_plan_exactly_as_plan_printed_it() {
    let formats: [&[&str]; 5] = [
        &[],
        &["--json"],
        &["--format", "human"],
        &["--format", "json"],
        &["--format", "markdown"],
    ];
    for format in formats {
        let mut p = Project::example("two-hosts");
        p.env("KMS_HOST_KEY_2", WINDOWS_KEY_2);
        let mut args = vec!["plan", "--out", "plan.json"];
        args.extend_from_slice(format);
        // a fresh lab host: the plan also carries the "lab host created" notice
        let planned = p.ok(&args, 0);
        assert!(planned.stdout.contains("lab host created"), "{planned:?}");

        // no host is contacted: both are unreachable now, and show still works
        for host in ["lab/kms01.json", "lab/kms02.json"] {
            p.ok(&["lab", "unreachable", host, "on"], 0);
        }
        let mut show = vec!["show", "plan.json"];
        show.extend_from_slice(format);
        let shown = p.ok(&show, 0);
        assert_eq!(shown.stdout, planned.stdout, "format {format:?}");

        // from another directory, with the plan given by an absolute path
        let elsewhere = tempfile::tempdir().expect("tmp");
        let plan_path = p.path("plan.json");
        let mut args = vec!["show", plan_path.to_str().expect("utf-8 path")];
        args.extend_from_slice(format);
        let out = output(
            Command::new(env!("CARGO_BIN_EXE_kmsconf"))
                .args(&args)
                .current_dir(elsewhere.path())
                .env_remove("KMS_HOST_KEY"),
        )
        .expect("run kmsconf");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            portable(String::from_utf8_lossy(&out.stdout).into_owned()),
            planned.stdout
        );
    }
}

#[test]
fn show_reads_plan_files_made_before_the_config_dir_was_recorded() {
    let p = Project::example("single-os-host");
    let planned = p.ok(&["plan", "--out", "plan.json"], 0);
    let mut doc: serde_json::Value = serde_json::from_str(&p.read("plan.json")).expect("json");
    assert!(doc["config_dir"].is_string(), "{doc}");
    doc.as_object_mut().expect("object").remove("config_dir");
    crate::integrity::reseal(&mut doc);
    p.write("old.json", &doc.to_string());
    let shown = p.ok(&["show", "old.json"], 0);
    assert_eq!(shown.stdout, planned.stdout);
    snapshot_run("show-plan-without-config-dir", &p, &shown);
}

#[test]
fn show_refuses_what_is_not_a_plan_and_format_flags_do_not_mix() {
    let p = Project::new();
    p.write("bad.json", "{\"hello\": 1}");
    let r = p.ok(&["show", "bad.json"], 1);
    snapshot_run("show-not-a-plan-file", &p, &r);
    let r = p.ok(&["show", "missing.json"], 1);
    snapshot_run("show-missing-plan-file", &p, &r);
    // a usage error is an error (1): 2 is `--detailed-exitcode`'s "changes"
    let r = p.ok(&["plan", "--json", "--format", "markdown"], 1);
    snapshot_run("plan-json-and-format", &p, &r);
    let r = p.run(&["plan", "--format", "yaml"]);
    assert_eq!(r.code, 1, "{r:?}");
}

#[test]
fn markdown_of_a_small_plan() {
    let p = Project::example("single-os-host");
    let md = p.ok(&["plan", "--format", "markdown"], 0);
    snapshot(
        "single-os-host-plan.md",
        &crate::integrity::mask_digests(&md.stdout),
    );
    assert!(!md.all().contains(WINDOWS_KEY), "{md:?}");
    // the same inputs give the same bytes
    p.ok(&["plan", "--out", "plan.json"], 0);
    let a = p.ok(&["show", "plan.json", "--format", "markdown"], 0);
    let b = p.ok(&["show", "plan.json", "--format", "markdown"], 0);
    assert_eq!(a.stdout, b.stdout);

    p.ok(&["apply", "--auto-approve"], 0);
    let none = p.ok(&["plan", "--format", "markdown"], 0);
    snapshot_run("single-os-host-no-changes.md", &p, &none);
}

#[test]
fn markdown_of_a_pending_phone_activation() {
    let mut p = Project::example("os-and-office-phone");
    p.env("OFFICE_2019_KEY", OFFICE_KEY);
    let before = p.ok(&["plan", "--format", "markdown"], 0);
    snapshot_run("phone-before-plan.md", &p, &before);
    let first = p.ok(&["apply", "--auto-approve"], 0);
    let iid = installation_id(&first.stdout);
    let md = p.ok(&["plan", "--format", "markdown"], 0);
    assert!(
        md.stdout.contains(&iid),
        "the reviewer needs the installation ID"
    );
    // installation IDs are random per lab host
    let redacted = crate::integrity::mask_digests(&md.stdout).replace(&iid, "<INSTALLATION-ID>");
    snapshot("phone-pending-plan.md", &redacted);
    for secret in [WINDOWS_KEY, OFFICE_KEY] {
        assert!(!md.all().contains(secret));
    }
    let again = p.ok(&["apply", "--auto-approve"], 0);
    snapshot_run("phone-pending-apply-again", &p, &again);
}

/// Many hosts with many changes: the summary stops under GitHub's limit and says how many
/// changes it left out, and that number is right.
#[test]
fn markdown_of_a_large_plan_is_cut_honestly() {
    let p = Project::new();
    let mut config = String::new();
    for i in 0..40 {
        config.push_str(&format!(
            "[hosts.kms{i:02}]\ntarget = \"lab:lab/kms{i:02}.json\"\n\n\
             [hosts.kms{i:02}.products.windows]\nhost_key = {{ env = \"KMS_HOST_KEY\" }}\n\n\
             [hosts.kms{i:02}.service]\nport = 1689\ndns_publishing = false\nlow_priority = true\n\
             activation_interval = 60\nrenewal_interval = 4320\nhost_caching = false\n\
             publish_domains = [\"corp.example\", \"branch{i:02}.corp.example\"]\n\n\
             [hosts.kms{i:02}.firewall]\nrule_groups = [\"key-management-service\", \"file-and-printer-sharing\"]\n\
             remote_addresses = [\"10.{i}.0.0/16\"]\n\n"
        ));
    }
    p.write("kmsconf.toml", &config);
    p.ok(&["plan", "--out", "plan.json"], 0);
    let md = p
        .ok(&["show", "plan.json", "--format", "markdown"], 0)
        .stdout;
    snapshot("large-plan.md", &crate::integrity::mask_digests(&md));
    assert!(
        md.chars().count() < 65_536,
        "{} characters",
        md.chars().count()
    );

    let json = p.ok(&["show", "plan.json", "--json"], 0).stdout;
    let doc: serde_json::Value = serde_json::from_str(&json).expect("json");
    let total = doc["summary"]["total"].as_u64().expect("total");
    let rows = md
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(" | `") && !l.starts_with("| `kms"))
        .count() as u64;
    assert!(rows > 0 && rows < total, "{rows} of {total}");
    let notice = format!("**… {} more changes in the plan artifact.**", total - rows);
    assert!(md.contains(&notice), "`{notice}` not in the summary");
    // every host still has its verdict
    for i in 0..40 {
        assert!(md.contains(&format!("| `kms{i:02}` |")), "kms{i:02}");
    }
}

#[test]
fn completions_for_every_shell() {
    let p = Project::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let r = p.ok(&["completions", shell], 0);
        for word in ["show", "completions", "format", "detailed-exitcode"] {
            assert!(r.stdout.contains(word), "{shell}: no `{word}`");
        }
        if shell != "powershell" {
            // clap_complete's PowerShell script completes flags, not their values
            assert!(r.stdout.contains("markdown"), "{shell}: no format values");
        }
    }
    #[cfg(unix)] // bash reads the bash script
    {
        let bash = p.ok(&["completions", "bash"], 0).stdout;
        p.write("kmsconf.bash", &bash);
        let check = Command::new("bash")
            .args(["-n", "kmsconf.bash"])
            .current_dir(p.dir.path())
            .output()
            .expect("bash");
        assert!(check.status.success(), "{check:?}");
    }
    // appended to an existing $PROFILE, the script must not start with `using` statements
    // (PowerShell allows them only first in a file), so its type names are written in full
    let ps = p.ok(&["completions", "powershell"], 0).stdout;
    assert!(!ps.contains("using namespace"), "{ps}");
    assert!(ps.contains("[System.Management.Automation.CompletionResult]::new("));
    assert!(!ps.contains("[CompletionResult]") && !ps.contains("[CompletionResultType]"));
    for line in ps.lines() {
        let unqualified = line
            .split('[')
            .skip(1)
            .filter_map(|t| t.split(']').next())
            .filter(|t| t.chars().next().is_some_and(char::is_uppercase) && !t.contains('.'))
            .collect::<Vec<_>>();
        assert!(unqualified.is_empty(), "{unqualified:?} in `{line}`");
    }
    let r = p.run(&["completions", "tcsh"]);
    assert_eq!(r.code, 1, "{r:?}");
}

/// A reader that stops early (`kmsconf show PLANFILE | head`) is not a crash, and `plan
/// --out` still saves its plan.
#[test]
fn output_into_a_closed_pipe_is_not_a_crash() {
    let mut p = Project::example("two-hosts");
    p.env("KMS_HOST_KEY_2", WINDOWS_KEY_2);
    let into_closed_pipe = |args: &[&str]| {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = p
            .command(args)
            .stdout(writer)
            .output()
            .expect("run kmsconf");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        (out.status.code(), stderr)
    };
    let (code, stderr) = into_closed_pipe(&["plan", "--out", "p.plan"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(p.dir.path().join("p.plan").exists(), "the plan is saved");
    for format in ["human", "json", "markdown"] {
        let (code, stderr) = into_closed_pipe(&["show", "p.plan", "--format", format]);
        assert_eq!(code, Some(0), "{format}: {stderr}");
    }
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let (code, stderr) = into_closed_pipe(&["completions", shell]);
        assert_eq!(code, Some(0), "{shell}: {stderr}");
    }
    assert_eq!(into_closed_pipe(&["schema"]).0, Some(0));
    assert_eq!(into_closed_pipe(&["explain", "0xC004F074"]).0, Some(0));
    assert_eq!(into_closed_pipe(&["explain", "0xC004F999"]).0, Some(1));
    assert_eq!(into_closed_pipe(&["validate"]).0, Some(0));
    assert_eq!(
        into_closed_pipe(&["lab", "clock", "lab/kms01.json", "+1h"]).0,
        Some(0)
    );
}

/// Progress, notes and errors go to stderr; a closed stderr (`2>&-`, or `2>&1 | head` once the
/// reader is gone) changes nothing else: the exit code is the command's, not a panic's 101.
#[test]
fn a_closed_stderr_is_not_a_crash() {
    let mut p = Project::example("two-hosts");
    p.env("KMS_HOST_KEY_2", WINDOWS_KEY_2);
    let with_stderr_closed = |args: &[&str]| {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = p
            .command(args)
            .stderr(writer)
            .output()
            .expect("run kmsconf");
        out.status.code()
    };
    assert_eq!(with_stderr_closed(&["plan", "--out", "p.plan"]), Some(0));
    assert!(p.path("p.plan").exists(), "the plan is saved");
    assert_eq!(with_stderr_closed(&["apply", "--auto-approve"]), Some(0));
    assert_eq!(with_stderr_closed(&["show", "missing.plan"]), Some(1));
}

#[test]
fn markdown_names_the_hosts_that_could_not_be_planned() {
    let mut p = Project::example("two-hosts");
    p.env("KMS_HOST_KEY_2", WINDOWS_KEY_2);
    p.ok(&["plan"], 0);
    p.ok(&["lab", "unreachable", "lab/kms02.json", "on"], 0);
    let r = p.ok(&["plan", "--format", "markdown"], 1);
    snapshot_run("two-hosts-one-unreachable-plan.md", &p, &r);
}

/// A plan file is JSON a person can edit; hosts edited into a dependency cycle are refused
/// before any host is touched, instead of an apply that waits forever.
#[test]
fn a_plan_file_with_hosts_in_a_cycle_is_refused() {
    let mut p = Project::example("two-hosts");
    p.env("KMS_HOST_KEY_2", WINDOWS_KEY_2);
    p.ok(&["plan", "--out", "plan.json"], 0);
    let mut doc: serde_json::Value = serde_json::from_str(&p.read("plan.json")).expect("json");
    doc["hosts"][0]["depends_on"] = serde_json::json!(["kms02"]);
    crate::integrity::reseal(&mut doc);
    p.write("plan.json", &doc.to_string());
    let lab = p.read("lab/kms01.json");
    let r = p.ok(&["apply", "plan.json"], 1);
    snapshot_run("apply-plan-file-with-a-host-cycle", &p, &r);
    assert_eq!(p.read("lab/kms01.json"), lab, "no host was touched");
}
