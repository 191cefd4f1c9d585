//! `kmsconf client-script` without VBScript: the PowerShell calls the Software Licensing
//! service's CIM methods (each one a row of the Windows facts table), the batch file runs that
//! PowerShell by full path, clients can be pointed at a DNS domain, and values from the config
//! are quoted so they cannot end a string. No PowerShell runs here: the script's structure is
//! checked instead.

use crate::common::*;

const DOMAIN_CONFIG: &str = "[hosts.kms01]
target = \"lab:lab/kms01.json\"
address = \"kms01.corp.example\"

[hosts.kms01.service]
publish_domains = [\"corp.example\", { domain = \"branch.corp.example\", priority = 10 }]

[hosts.kms01.products.windows]
host_key = { env = \"KMS_HOST_KEY\" }

[hosts.kms01.products.office-2021]
host_key = { env = \"KMS_HOST_KEY\" }
license_pack = \"packs/office-2021\"
";

/// One host reached at `address` (a TOML string, escapes as written).
fn at_address(address: &str) -> String {
    format!("[hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\naddress = \"{address}\"\n\n[hosts.kms01.products.windows]\nhost_key = {{ env = \"KMS_HOST_KEY\" }}\n")
}

/// Every CIM method the script's top level invokes (`Invoke-Licensing $x 'Method'`); the
/// helpers call `Activate` and `RefreshLicenseStatus`.
fn methods(ps1: &str) -> Vec<&str> {
    ps1.lines()
        .filter_map(|l| l.strip_prefix("Invoke-Licensing $"))
        .filter_map(|l| l.split('\'').nth(1))
        .collect()
}

/// Balanced single-quoted strings on each line (quotes doubled inside), balanced braces and
/// parentheses outside strings across the script: what a PowerShell parser would trip on first.
fn check_structure(ps1: &str) {
    let mut depth: i64 = 0;
    for (n, line) in ps1.lines().enumerate() {
        assert!(line.is_ascii(), "line {}: not ASCII: {line}", n + 1);
        if line.trim_start().starts_with('#') {
            continue;
        }
        let mut in_single = false;
        let mut in_double = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\'' if !in_double => {
                    if in_single && chars.peek() == Some(&'\'') {
                        chars.next();
                    } else {
                        in_single = !in_single;
                    }
                }
                '"' if !in_single => in_double = !in_double,
                '{' | '(' if !in_single && !in_double => depth += 1,
                '}' | ')' if !in_single && !in_double => depth -= 1,
                _ => {}
            }
            assert!(
                depth >= 0,
                "line {}: closes more than it opens: {line}",
                n + 1
            );
        }
        assert!(
            !in_single && !in_double,
            "line {}: a string is not closed: {line}",
            n + 1
        );
    }
    assert_eq!(depth, 0, "braces and parentheses are not balanced");
}

#[test]
fn the_powershell_calls_cim_methods_of_the_facts_table_and_no_vbscript() {
    let p = Project::new();
    p.write("kmsconf.toml", DOMAIN_CONFIG);
    let args = [
        "client-script",
        "--host",
        "kms01",
        "--edition",
        "windows-enterprise",
        "--edition",
        "office-2021-professional-plus",
        "--format",
        "ps1",
    ];
    let ps1 = p.ok(&args, 0).stdout;
    check_structure(&ps1);
    assert!(!ps1.to_ascii_lowercase().contains(".vbs\""), "{ps1}");
    assert!(!ps1.contains("cscript"), "{ps1}");
    let called = methods(&ps1);
    assert_eq!(
        called,
        [
            "InstallProductKey",
            "InstallProductKey",
            "SetKeyManagementServiceMachine",
            "SetKeyManagementServicePort",
            "RefreshLicenseStatus",
        ],
        "{ps1}"
    );
    // the methods in the helpers: Activate, RefreshLicenseStatus; every one has a facts row
    let table = include_str!("../../model/data/windows.toml");
    for m in called.iter().chain(&["Activate", "RefreshLicenseStatus"]) {
        assert!(
            table.contains(&format!("name = \"{m}\"")),
            "{m} has no row in windows.toml"
        );
    }
    snapshot("client-script-office-2021.ps1", &ps1);

    // Office alone: Windows, which may hold a MAK or a retail key, is not activated
    let office_only = p
        .ok(
            &[
                "client-script",
                "--host",
                "kms01",
                "--edition",
                "office-2021-standard",
                "--format",
                "ps1",
            ],
            0,
        )
        .stdout;
    assert!(
        !office_only.contains("Enable-KmsClient '55c92734"),
        "{office_only}"
    );
    assert!(
        office_only.contains("Enable-KmsClient '0ff1ce15"),
        "{office_only}"
    );
}

#[test]
fn clients_can_be_pointed_at_a_published_domain() {
    let p = Project::new();
    p.write("kmsconf.toml", DOMAIN_CONFIG);
    let domain = |extra: &[&str], code: i32| {
        let mut args = vec!["client-script", "--host", "kms01", "--format", "ps1"];
        args.extend_from_slice(extra);
        p.ok(&args, code)
    };
    let ps1 = domain(&["--domain", "branch.corp.example."], 0).stdout;
    check_structure(&ps1);
    assert_eq!(
        methods(&ps1),
        [
            "SetKeyManagementServiceLookupDomain",
            "ClearKeyManagementServiceMachine",
            "ClearKeyManagementServicePort",
            "RefreshLicenseStatus",
        ]
    );
    assert!(ps1.contains("$KmsDomain = 'branch.corp.example'"), "{ps1}");
    snapshot("client-script-domain.ps1", &ps1);
    let cmd = p
        .ok(
            &[
                "client-script",
                "--host",
                "kms01",
                "--domain",
                "corp.example",
            ],
            0,
        )
        .stdout;
    snapshot("client-script-domain.cmd", &cmd.replace("\r\n", "\n"));

    // two domains and no choice, a domain the host does not publish in, none at all
    let r = domain(&["--domain"], 1);
    snapshot_run("client-script-domain-ambiguous", &p, &r);
    let r = domain(&["--domain", "other.example"], 1);
    snapshot_run("client-script-domain-not-published", &p, &r);
    p.write("kmsconf.toml", &at_address("kms01.corp.example"));
    let r = p.ok(&["client-script", "--host", "kms01", "--domain"], 1);
    snapshot_run("client-script-domain-none", &p, &r);
}

#[test]
fn the_batch_file_runs_its_own_powershell_by_full_path() {
    let p = Project::new();
    p.write("kmsconf.toml", DOMAIN_CONFIG);
    let base = [
        "client-script",
        "--host",
        "kms01",
        "--edition",
        "windows-pro",
    ];
    let cmd = p.ok(&base, 0).stdout;
    let mut ps1_args = base.to_vec();
    ps1_args.extend(["--format", "ps1"]);
    let ps1 = p.ok(&ps1_args, 0).stdout;
    let (head, body) = cmd
        .split_once("##kmsconf-powershell\r\n")
        .expect("the batch file carries its PowerShell");
    assert!(
        head.contains("\"%SystemRoot%\\System32\\WindowsPowerShell\\v1.0\\powershell.exe\""),
        "{head}"
    );
    assert!(!head.contains("cscript"), "{head}");
    // what follows the marker is the ps1's body (its header comments aside), CRLF
    let body = body.replace("\r\n", "\n");
    let start = ps1.find("$ErrorActionPreference").expect("body");
    assert_eq!(body, ps1[start..]);
    // the command looks for the marker in two halves, so it does not find itself
    assert!(!head.contains("##kmsconf-powershell"), "{head}");
    assert!(head.contains("'##' + 'kmsconf-powershell'"), "{head}");
}

/// A host's `address` must be a DNS name or an IP address, so a quote, `&`, `%` or a non-ASCII
/// character never reaches a script (the PowerShell quoting of what does is unit-tested).
#[test]
fn values_from_the_config_cannot_end_a_string() {
    let p = Project::new();
    for address in [
        "kms'; Remove-Item C:\\\\ -Recurse; '",
        "kms01 & del %TEMP% ^",
        "kms\u{2019}01",
    ] {
        p.write("kmsconf.toml", &at_address(address));
        let r = p.ok(&["client-script", "--host", "kms01", "--format", "ps1"], 1);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        assert!(
            r.stderr.contains("is not a DNS name or an IP address"),
            "{}",
            r.stderr
        );
    }
    // what passes is printable ASCII, quoted
    p.write("kmsconf.toml", &at_address("kms-01.corp.example"));
    let ps1 = p
        .ok(&["client-script", "--host", "kms01", "--format", "ps1"], 0)
        .stdout;
    check_structure(&ps1);
    assert!(ps1.contains("$KmsMachine = 'kms-01.corp.example'"), "{ps1}");
}

#[test]
fn an_unknown_edition_suggests_the_nearest_ids() {
    let p = Project::new();
    p.write("kmsconf.toml", DOMAIN_CONFIG);
    let r = p.ok(
        &[
            "client-script",
            "--host",
            "kms01",
            "--edition",
            "windows-11-enterprise",
        ],
        1,
    );
    snapshot_run("client-script-nearest-edition", &p, &r);
}
