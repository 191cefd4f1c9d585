//! Every bundled example validates, plans, applies and re-plans to no changes against lab hosts.

use crate::common::*;

/// Converges a copy of `examples/NAME`.
fn converge(p: &Project, name: &str) {
    p.ok(&["validate"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 2);
    p.ok(&["apply", "--auto-approve"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 0);
    let again = p.ok(&["apply", "--auto-approve"], 0);
    snapshot_run(&format!("{name}-apply-again"), p, &again);
}

#[test]
fn single_os_host_converges() {
    converge(&Project::example("single-os-host"), "single-os-host");
}

#[test]
fn two_hosts_converge_and_the_plan_reads_as_reviewed() {
    let mut p = Project::example("two-hosts");
    p.env("KMS_HOST_KEY_2", WINDOWS_KEY_2);
    let plan = p.ok(&["plan"], 0);
    snapshot("two-hosts-plan.txt", &plan.stdout);
    let json = p.ok(&["plan", "--json"], 0);
    snapshot("two-hosts-plan.json", &json.stdout);
    let applied = p.ok(&["apply", "--auto-approve"], 0);
    // without a terminal, progress is plain lines on stderr, one per host and step
    snapshot_run("two-hosts-apply.txt", &p, &applied);
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn phone_activation_stays_pending_until_the_confirmation_id_is_supplied() {
    let mut p = Project::example("os-and-office-phone");
    p.env("OFFICE_2019_KEY", OFFICE_KEY);
    p.ok(&["validate"], 0);
    let first = p.ok(&["apply", "--auto-approve"], 0);
    snapshot_run("phone-first-apply", &p, &first);
    let iid = installation_id(&first.stdout);

    // the activation stays in the plan, with the installation ID to phone in
    let plan = p.ok(&["plan", "--detailed-exitcode"], 2);
    assert!(plan.stdout.contains(&iid), "{plan:?}");
    snapshot_run("phone-pending-plan", &p, &plan);

    // a wrong confirmation ID (well-formed, every group's check digit right, but another
    // installation's) is refused with the real error and changes nothing
    p.env("OFFICE_2019_CID", &"123450".repeat(8));
    let wrong = p.ok(&["apply", "--auto-approve"], 1);
    snapshot_run("phone-wrong-confirmation-id", &p, &wrong);

    let cid = p
        .ok(&["lab", "confirmation-id", &iid], 0)
        .stdout
        .trim()
        .to_string();
    assert_eq!(cid.split('-').count(), 8);
    p.env("OFFICE_2019_CID", &cid);
    let plan = p.ok(&["plan"], 0);
    snapshot_run("phone-confirmation-id-plan", &p, &plan);
    assert!(!plan.all().contains(&cid) && !plan.all().contains(&cid.replace('-', "")));
    p.ok(&["apply", "--auto-approve"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 0);
}
