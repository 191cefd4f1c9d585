//! Every bundled example validates, plans, applies and re-plans to no changes against lab hosts.

use crate::common::*;

fn converge(p: &Project) {
    p.ok(&["validate"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 2);
    p.ok(&["apply", "--auto-approve"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 0);
    let again = p.ok(&["apply", "--auto-approve"], 0);
    assert!(again.stdout.contains("No changes"), "{again:?}");
}

#[test]
fn single_os_host_converges() {
    converge(&Project::example("single-os-host"));
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
    snapshot("two-hosts-apply.txt", &applied.stdout);
    // without a terminal, progress is plain lines on stderr, one per host and step
    assert!(
        applied
            .stderr
            .contains("kms02: 13 applied, 0 failed, 0 skipped, 0 pending"),
        "{applied:?}"
    );
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn phone_activation_stays_pending_until_the_confirmation_id_is_supplied() {
    let mut p = Project::example("os-and-office-phone");
    p.env("OFFICE_2019_KEY", OFFICE_KEY);
    p.ok(&["validate"], 0);
    let first = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        first
            .stdout
            .contains("pending  products.office-2019.activation"),
        "{first:?}"
    );
    let iid = installation_id(&first.stdout);

    // the activation stays in the plan, with the installation ID to phone in
    let plan = p.ok(&["plan", "--detailed-exitcode"], 2);
    assert!(plan.stdout.contains(&iid), "{plan:?}");
    assert!(
        plan.stdout
            .contains("slmgr.vbs /dti 70512334-47b4-44db-a233-be5ea33b914c"),
        "{plan:?}"
    );

    // a wrong confirmation ID is refused with the real error and changes nothing
    p.env("OFFICE_2019_CID", &"1".repeat(48));
    let wrong = p.ok(&["apply", "--auto-approve"], 1);
    assert!(wrong.stdout.contains("0xC004F031"), "{wrong:?}");
    assert!(
        wrong
            .stdout
            .contains("the installation ID and the confirmation ID do not match"),
        "{wrong:?}"
    );

    let cid = p
        .ok(&["lab", "confirmation-id", &iid], 0)
        .stdout
        .trim()
        .to_string();
    assert_eq!(cid.split('-').count(), 8);
    p.env("OFFICE_2019_CID", &cid);
    let plan = p.ok(&["plan"], 0);
    assert!(
        plan.stdout
            .contains("slmgr.vbs /atp <confirmation ID> 70512334"),
        "{plan:?}"
    );
    assert!(!plan.all().contains(&cid) && !plan.all().contains(&cid.replace('-', "")));
    p.ok(&["apply", "--auto-approve"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 0);
}
