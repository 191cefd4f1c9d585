//! Paths on Windows: kmsconf prints them with one separator, `\`, however the config writes them,
//! and two lab targets that name one file the way Windows reads paths (either separator, any
//! case) are one machine. Windows only; `validate.rs` has the same checks as Linux sees them.

use crate::common::*;

#[test]
fn windows_prints_paths_with_backslashes() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    let plan = p.run_as_printed(&["plan"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout.contains(r"(lab:lab\kms01.json)") && !plan.stdout.contains("lab/"),
        "{plan:?}"
    );
    p.write(
        "kmsconf.toml",
        "[hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\n[hosts.kms01.products.windows]\nhost_key = { file = \"keys/./none.txt\" }\n",
    );
    let r = p.run_as_printed(&["plan"]);
    assert_eq!(r.code, 1, "{r:?}");
    let dir = p.dir.path().display().to_string();
    assert!(
        r.all()
            .contains(&format!(r"cannot read `{dir}\keys\.\none.txt`"))
            && !r.all().contains("keys/"),
        "{r:?}"
    );
}

#[test]
fn lab_targets_naming_one_file_are_one_machine_on_windows() {
    let p = Project::new();
    p.write(
        "kmsconf.toml",
        "[hosts.a]\ntarget = \"lab:lab/x.json\"\n[hosts.b]\ntarget = 'lab:lab\\x.json'\n",
    );
    let r = p.run_as_printed(&["validate"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            r"hosts `a` and `b` have the same target `lab:{}\lab\x.json`",
            p.dir.path().display()
        )),
        "{r:?}"
    );
    p.write(
        "kmsconf.toml",
        "[hosts.a]\ntarget = \"lab:lab/X.json\"\n[hosts.b]\ntarget = 'lab:lab\\x.json'\n",
    );
    let r = p.run_as_printed(&["validate"]);
    assert_eq!(r.code, 1, "{r:?}");
    let dir = p.dir.path().display();
    assert!(
        r.stderr.contains(&format!(
            r"hosts `a` and `b` have the same target (`lab:{dir}\lab\X.json` and `lab:{dir}\lab\x.json` are one machine)"
        )),
        "{r:?}"
    );
}

/// The check every Windows run of these tests goes through (`common::portable`): a path that
/// kmsconf printed half with `\`, half with `/` fails the test that sees it, since the
/// normalising for snapshots would otherwise hide it.
#[test]
#[should_panic(expected = "kmsconf printed a path with both separators, `C:\\p\\lab/kms03.json`")]
fn a_path_printed_with_both_separators_fails_the_test() {
    portable(r"error: cannot read `C:\p\lab/kms03.json`: denied".to_string());
}

#[test]
fn paths_printed_with_one_separator_pass_the_check() {
    let text = r#"host kms01 (lab:C:\p\lab\kms01.json) "C:\\p\\x.plan" %SystemRoot%\System32\slmgr.vbs /skms winrm://CORP\svc@h/wsman lab:lab/x.json "pattern": "[^@:\\s/]+""#;
    assert_eq!(
        portable(text.to_string()),
        r#"host kms01 (lab:C:/p/lab/kms01.json) "C:/p/x.plan" %SystemRoot%\System32\slmgr.vbs /skms winrm://CORP\svc@h/wsman lab:lab/x.json "pattern": "[^@:\\s/]+""#
    );
}
