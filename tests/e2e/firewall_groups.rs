//! Issue 24, findings 6 and 9: `profiles` bounds File and Printer Sharing rule by rule (Public
//! stays closed, outbound rules are never named, a second apply changes nothing), the lab's real
//! File and Printer Sharing rules, a mistyped confirmation ID's check digit (0xC004F04D), and a
//! missing rule's not-found error without an HRESULT, each through the real binary.

use serde_json::Value;

use crate::common::*;

/// The inbound rules of File and Printer Sharing, as the facts table lists them.
const FPS_RULES: [&str; 17] = [
    "FPS-SMB-In-TCP",
    "FPS-SMB-In-TCP-NoScope",
    "FPS-NB_Session-In-TCP",
    "FPS-NB_Session-In-TCP-NoScope",
    "FPS-NB_Name-In-UDP",
    "FPS-NB_Name-In-UDP-NoScope",
    "FPS-NB_Datagram-In-UDP",
    "FPS-NB_Datagram-In-UDP-NoScope",
    "FPS-ICMP4-ERQ-In",
    "FPS-ICMP4-ERQ-In-NoScope",
    "FPS-ICMP6-ERQ-In",
    "FPS-ICMP6-ERQ-In-NoScope",
    "FPS-SpoolSvc-In-TCP",
    "FPS-SpoolSvc-In-TCP-NoScope",
    "FPS-RPCSS-In-TCP",
    "FPS-RPCSS-In-TCP-NoScope",
    "FPS-LLMNR-In-UDP",
];

fn fps_config(profiles: &str) -> String {
    format!(
        "[hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\n\n[hosts.kms01.firewall]\nrule_groups = [\"file-and-printer-sharing\"]\n{profiles}"
    )
}

/// The lab host's File and Printer Sharing rules, by name.
fn fps_rules(p: &Project) -> serde_json::Map<String, Value> {
    let file: Value = serde_json::from_str(&p.read("lab/kms01.json")).expect("lab file");
    file["host"]["firewall"]["groups"]["file-and-printer-sharing"]["rules"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

fn open_on(rule: &Value, profile: &str) -> bool {
    rule["enabled"] == true
        && rule["profiles"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p == profile))
}

#[test]
fn profiles_bound_file_and_printer_sharing_and_public_stays_closed() {
    let p = Project::new();
    // `profiles` without the Key Management Service group is valid now
    p.write("kmsconf.toml", &fps_config(""));
    p.ok(&["validate"], 0);
    p.ok(&["plan"], 0); // creates the lab host
    let plan = p.ok(&["plan", "--detailed-exitcode"], 2);
    snapshot_run("fps-default-profiles-plan", &p, &plan);
    for rule in FPS_RULES {
        assert!(
            plan.stdout
                .contains(&format!("firewall.file-and-printer-sharing.{rule}:")),
            "{rule}: {plan:?}"
        );
    }
    // never an outbound rule, never the localized group name, never the whole group
    assert!(!plan.stdout.contains("-Out-") && !plan.stdout.contains("netsh"));
    p.ok(&["apply", "--auto-approve"], 0);
    let rules = fps_rules(&p);
    assert_eq!(rules.len(), FPS_RULES.len(), "{rules:?}");
    for (name, rule) in &rules {
        assert!(!open_on(rule, "public"), "{name} is open on Public: {rule}");
        assert!(
            open_on(rule, "domain") || open_on(rule, "private"),
            "{name}: {rule}"
        );
        // the built-in scope is kept
        let scope = if name.ends_with("-NoScope") {
            serde_json::json!([])
        } else {
            serde_json::json!(["LocalSubnet"])
        };
        assert_eq!(rule["remote_addresses"], scope, "{name}");
    }
    // a second apply changes nothing
    p.ok(&["plan", "--detailed-exitcode"], 0);
    let again = p.ok(&["apply", "--auto-approve"], 0);
    assert!(again.all().contains("No changes"), "{again:?}");

    // Domain only: the Private/Public rules close again, LLMNR keeps Domain alone
    p.write("kmsconf.toml", &fps_config("profiles = [\"domain\"]\n"));
    p.ok(&["apply", "--auto-approve"], 0);
    let rules = fps_rules(&p);
    for (name, rule) in &rules {
        assert!(
            !open_on(rule, "public") && !open_on(rule, "private"),
            "{name}: {rule}"
        );
    }
    assert!(open_on(&rules["FPS-SMB-In-TCP-NoScope"], "domain"));
    assert!(open_on(&rules["FPS-LLMNR-In-UDP"], "domain"));
    p.ok(&["plan", "--detailed-exitcode"], 0);

    // Public only when it is configured, and then on the scoped rules alone
    p.write(
        "kmsconf.toml",
        &fps_config("profiles = [\"domain\", \"private\", \"public\"]\n"),
    );
    p.ok(&["apply", "--auto-approve"], 0);
    let rules = fps_rules(&p);
    assert!(open_on(&rules["FPS-SMB-In-TCP"], "public"));
    assert!(!open_on(&rules["FPS-SMB-In-TCP-NoScope"], "public"));
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

/// A lab file from before the rules were kept one by one, with the group enabled whole: it
/// loads as Windows' built-in rules all enabled (Public open, as enabling the group does), and
/// the plan closes Public.
#[test]
fn a_group_enabled_whole_is_narrowed_to_the_configured_profiles() {
    let p = Project::new();
    p.write("kmsconf.toml", &fps_config(""));
    p.ok(&["plan"], 0);
    let mut file: Value = serde_json::from_str(&p.read("lab/kms01.json")).expect("lab file");
    file["host"]["firewall"]["groups"]["file-and-printer-sharing"] =
        serde_json::json!({ "enabled": true, "remote_addresses": [] });
    p.write("lab/kms01.json", &file.to_string());
    let plan = p.ok(&["plan", "--detailed-exitcode"], 2);
    assert!(
        plan.stdout.contains(
            "# Set-NetFirewallRule -Name FPS-SMB-In-TCP -Enabled True -Profile Private\n"
        ),
        "{plan:?}"
    );
    p.ok(&["apply", "--auto-approve"], 0);
    assert!(fps_rules(&p).values().all(|r| !open_on(r, "public")));
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

/// The first digit of the second group, one higher: a typo that fails that group's check digit.
fn mistyped(cid: &str) -> String {
    cid.char_indices()
        .map(|(i, c)| match (i, c.to_digit(10)) {
            (7, Some(d)) => char::from_digit((d + 1) % 10, 10).unwrap_or(c),
            _ => c,
        })
        .collect()
}

#[test]
fn a_mistyped_confirmation_id_fails_its_check_digit_with_0xc004f04d() {
    let mut p = Project::new();
    p.write(
        "kmsconf.toml",
        &single_host("activation = \"phone\"\nconfirmation_id = { env = \"KMS_CID\" }\n"),
    );
    let first = p.ok(&["apply", "--auto-approve"], 0);
    let iid = installation_id(&first.stdout);
    let cid = p
        .ok(&["lab", "confirmation-id", &iid], 0)
        .stdout
        .trim()
        .to_string();
    let typo = mistyped(&cid);
    p.env("KMS_CID", &typo);
    // validate warns, naming the variable, never the value
    let validated = p.ok(&["validate"], 0);
    snapshot_run("cid-mistyped-validate", &p, &validated);
    assert!(validated.all().contains("env `KMS_CID`"), "{validated:?}");
    let failed = p.ok(&["apply", "--auto-approve"], 1);
    snapshot_run("cid-mistyped-apply", &p, &failed);
    assert!(failed.all().contains("0xC004F04D"), "{failed:?}");
    for shown in [&typo, &typo.replace('-', ""), &cid] {
        assert!(!failed.all().contains(shown.as_str()), "the ID was printed");
        assert!(
            !validated.all().contains(shown.as_str()),
            "the ID was printed"
        );
    }
    // well-formed but not this installation's: the mismatch code
    p.env("KMS_CID", &"123450-".repeat(8)[..55]);
    let other = p.ok(&["apply", "--auto-approve"], 1);
    assert!(other.all().contains("0xC004F031"), "{other:?}");
    p.env("KMS_CID", &cid);
    p.ok(&["apply", "--auto-approve"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

/// A rule the host lacks when the agent sets it: the cmdlet's not-found error, category
/// `ObjectNotFound`, no HRESULT. A fake `ssh` renames the rule in the request on its way to
/// `kmsconf lab agent`, as a host whose rule went away between discovery and the change.
#[cfg(unix)]
#[test]
fn a_missing_rule_is_the_cmdlets_not_found_error_without_an_hresult() {
    let mut p = Project::new();
    p.write(
        "kmsconf.toml",
        "[hosts.kms01]\ntarget = \"ssh://admin@kms01.test\"\n\n[hosts.kms01.firewall]\nrule_groups = [\"file-and-printer-sharing\"]\n",
    );
    let script = format!(
        "#!/bin/sh\nsed -u 's/\"rule\":\"FPS-SMB-In-TCP\"/\"rule\":\"FPS-SMB-In-TCP-Gone\"/' | exec '{bin}' lab agent '{lab}'\n",
        bin = env!("CARGO_BIN_EXE_kmsconf"),
        lab = p.path("lab/kms01.json").display()
    );
    p.write("bin/ssh", &script);
    let path = p.path("bin/ssh");
    let mut perms = std::fs::metadata(&path).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).expect("chmod");
    p.env("KMSCONF_SSH", &path.display().to_string());
    p.env("KMSCONF_TIMEOUT", "60");
    let failed = p.ok(&["apply", "--auto-approve"], 1);
    snapshot_run("fps-missing-rule-apply", &p, &failed);
    let all = failed.all();
    assert!(
        all.contains("No MSFT_NetFirewallRule objects found with property 'InstanceID' equal to 'FPS-SMB-In-TCP-Gone'")
            && all.contains("(ObjectNotFound)"),
        "{failed:?}"
    );
    assert!(
        !all.contains("0x8007") && !all.contains("0x8004"),
        "{failed:?}"
    );
    // the other rules were set; only the renamed one is left for the next run
    let plan = p.run(&["plan"]);
    assert!(
        plan.stdout
            .contains("firewall.file-and-printer-sharing.FPS-SMB-In-TCP:")
            && !plan.stdout.contains("FPS-SMB-In-TCP-NoScope:"),
        "{plan:?}"
    );
}
