//! Secrets never reach output, logs, traces, plan files or lab state files.

use crate::common::*;

#[test]
fn an_env_secret_is_absent_from_everything_at_trace_level() {
    let mut p = Project::example("os-and-office-phone");
    p.env("OFFICE_2019_KEY", OFFICE_KEY)
        .env("KMSCONF_LOG", "trace");
    let mut seen = String::new();
    for args in [
        &["validate"][..],
        &["plan", "--out", "plan.json"],
        &["plan", "--json"],
        &["apply", "plan.json"],
    ] {
        let r = p.run(args);
        assert!(r.code == 0, "{args:?}: {r:?}");
        seen.push_str(&r.all());
    }
    let iid = installation_id(&seen);
    let cid = p
        .ok(&["lab", "confirmation-id", &iid], 0)
        .stdout
        .trim()
        .to_string();
    p.env("OFFICE_2019_CID", &cid);
    for args in [
        &["plan", "--out", "plan2.json"][..],
        &["apply", "plan2.json"],
    ] {
        let r = p.run(args);
        assert!(r.code == 0, "{args:?}: {r:?}");
        seen.push_str(&r.all());
    }
    assert!(
        seen.contains("TRACE") || seen.contains("DEBUG"),
        "tracing was on"
    );
    // the trace shows the operations that carry the keys and the confirmation ID
    assert!(
        seen.contains("InstallProductKey") && seen.contains("ActivateByPhone"),
        "the batches were traced"
    );
    seen.push_str(&p.read("plan.json"));
    seen.push_str(&p.read("plan2.json"));
    seen.push_str(&p.read("lab/kms01.json"));
    for secret in [WINDOWS_KEY, OFFICE_KEY, &cid] {
        // the whole secret, and any part of it longer than the five characters Windows shows
        let bare: String = secret.chars().filter(|c| *c != '-').collect();
        assert!(!seen.contains(secret), "secret leaked");
        assert!(!seen.contains(&bare[..10]), "part of a secret leaked");
        assert!(!seen.contains(&secret[..11]), "part of a secret leaked");
    }
    assert!(
        seen.contains("*****-*****-*****-*****-6789B"),
        "the masked form is shown"
    );
}

#[test]
fn a_literal_secret_warns_and_cannot_go_into_a_plan_file() {
    let p = Project::new();
    let config = format!("[hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\n[hosts.kms01.products.windows]\nhost_key = \"{WINDOWS_KEY}\"\n");
    p.write("kmsconf.toml", &config);
    let v = p.ok(&["validate"], 0);
    assert!(
        v.stderr.contains(
            "kmsconf.toml:4:12: warning: the host key of `windows` is written in the config"
        ),
        "{v:?}"
    );
    let r = p.ok(&["plan", "--out", "plan.json"], 1);
    assert!(r.stderr.contains("cannot save a plan that needs a secret written in the config (declared at kmsconf.toml:4:12)"), "{r:?}");
    assert!(!p.path("plan.json").exists());
    assert!(!r.all().contains(WINDOWS_KEY) && !v.all().contains(WINDOWS_KEY));
}
