//! `kmsconf clients` against a lab host with clones, an uncovered Office client and a DNS
//! publishing failure: the human report, `--json` against its schema, the OpenMetrics through
//! `promtool check metrics`, the HTML page in headless Chromium, and the cloned-image story as
//! the book tells it (clone, count stuck, doctor, fix, count rises).

use serde_json::Value;

use crate::common::*;

const CLONE: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";

/// One Windows KMS host, applied, with 3 clients 5 days ago, 30 clones of one image 2 days ago,
/// one Office 2019 client it has no key for, and a failed DNS publishing.
fn cloned_fleet() -> Project {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    p.ok(&["apply", "--auto-approve"], 0);
    let lab = "lab/kms01.json";
    let add = |extra: &[&str]| {
        let mut args = vec!["lab", "clients", "add", lab];
        args.extend_from_slice(extra);
        p.ok(&args, 0)
    };
    add(&[
        "--edition",
        "windows-enterprise",
        "--count",
        "3",
        "--ago",
        "5d",
    ]);
    add(&[
        "--edition",
        "windows-enterprise",
        "--cmid",
        CLONE,
        "--count",
        "30",
        "--ago",
        "2d",
    ]);
    add(&[
        "--edition",
        "office-2019-standard",
        "--fqdn",
        "desk7.corp.example",
    ]);
    p.ok(&["lab", "dns-failure", lab, "--domain", "corp.example"], 0);
    p
}

/// Times become `TIME` and the lab's generated CMIDs `GUID`; the clones' stays.
fn timeless(text: &str) -> String {
    timeless_keeping(text, &[CLONE])
}

#[test]
fn clients_shows_clones_uncovered_clients_and_dns_failures() {
    let p = cloned_fleet();
    let human = p.ok(&["clients"], 0);
    snapshot("clients.txt", &timeless(&human.stdout));

    let doc = crate::schemas::valid("clients", &p.ok(&["clients", "--json"], 0));
    assert_eq!(doc["format_version"], 1);
    let h = &doc["hosts"][0];
    assert_eq!(h["requests"], 34);
    let windows = h["products"]
        .as_array()
        .and_then(|l| l.iter().find(|x| x["product"] == "windows"))
        .expect("windows");
    // 3 machines and one image: 4 CMIDs from 33 names, below the 25 Windows clients need
    assert_eq!(windows["distinct_clients"], 4);
    assert_eq!(windows["distinct_names"], 33);
    assert_eq!(windows["meets_threshold"], false);
    assert_eq!(windows["daily"].as_array().map(Vec::len), Some(31));
    assert_eq!(h["duplicates"][0]["cmid"], CLONE);
    assert_eq!(
        h["duplicates"][0]["fqdns"].as_array().map(Vec::len),
        Some(30)
    );
    assert_eq!(h["uncovered"][0]["product"], "office-2019");
    assert_eq!(h["dns_failures"][0]["code"], "0x80072338");
    assert_eq!(h["service"]["running"], true);

    let metrics = p.ok(&["clients", "--format", "openmetrics"], 0).stdout;
    crate::metrics::check_metrics(&metrics);
    for line in [
        "kmsconf_kms_clients{host=\"kms01\",product=\"windows\"} 4",
        "kmsconf_kms_duplicate_cmids{host=\"kms01\"} 1",
        "kmsconf_kms_service_up{host=\"kms01\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }
    assert!(metrics.contains("kmsconf_kms_last_request_timestamp_seconds{host=\"kms01\"} "));

    // an unreadable host: exit 1, its error in the document, no series
    p.ok(&["lab", "unreachable", "lab/kms01.json", "on"], 0);
    let doc = crate::schemas::valid("clients", &p.ok(&["clients", "--json"], 1));
    assert_eq!(doc["hosts"][0]["error"]["kind"], "unreachable");
    let metrics = p.ok(&["clients", "--format", "openmetrics"], 1).stdout;
    crate::metrics::check_metrics(&metrics);
    assert!(!metrics.contains("host=\"kms01\""), "{metrics}");
}

/// The check `id` of `doctor --json`.
fn check(doc: &Value, id: &str) -> Value {
    doc["checks"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["check"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("no {id} in {doc:#}"))
}

/// The book's story: clones keep the count at 4, doctor names the CMID and the fix, the clones
/// are generalized and ask again with CMIDs of their own, and the count rises past 25.
#[test]
fn the_cloned_image_story_clone_count_stuck_doctor_fix_count_rises() {
    let p = cloned_fleet();
    let doc: Value = serde_json::from_str(&p.ok(&["doctor", "--json"], 1).stdout).expect("json");
    let dup = check(&doc, "cmid-duplicates");
    assert_eq!(dup["status"], "failed");
    assert_eq!(dup["subject"], CLONE);
    let fix = dup["fix"].as_str().expect("fix");
    assert!(
        fix.contains("sysprep /generalize") && fix.contains("slmgr.vbs /rearm"),
        "{fix}"
    );
    let dns = check(&doc, "dns-publishing");
    assert_eq!(
        (dns["status"].as_str(), dns["code"].as_str()),
        (Some("failed"), Some("0x80072338"))
    );
    assert!(
        dns["detail"].as_str().is_some_and(|d| d.contains("BADSIG")),
        "{dns}"
    );
    assert_eq!(check(&doc, "kms-idle")["status"], "ok");
    assert_eq!(check(&doc, "service-running")["status"], "ok");

    // the fix: each clone generalized, asking again with a CMID of its own
    let lab = "lab/kms01.json";
    p.ok(
        &[
            "lab",
            "clients",
            "add",
            lab,
            "--edition",
            "windows-enterprise",
            "--count",
            "30",
        ],
        0,
    );
    p.ok(&["lab", "dns-failure", lab, "--clear"], 0);
    let doc: Value = serde_json::from_str(&p.ok(&["clients", "--json"], 0).stdout).expect("json");
    let windows = &doc["hosts"][0]["products"][1];
    assert_eq!(windows["product"], "windows");
    assert_eq!(
        (
            windows["distinct_clients"].as_u64(),
            windows["meets_threshold"].as_bool()
        ),
        (Some(34), Some(true))
    );
    // the clones' old requests leave the window read with `--since 1d`
    let doc: Value = serde_json::from_str(&p.ok(&["doctor", "--json", "--since", "1d"], 1).stdout)
        .expect("json");
    assert_eq!(check(&doc, "cmid-duplicates")["status"], "ok");
    assert_eq!(check(&doc, "dns-publishing")["status"], "ok");

    // idle and a stopped service
    p.ok(&["lab", "clock", lab, "+3d"], 0);
    p.ok(&["lab", "sppsvc", lab, "disabled"], 0);
    let doc: Value = serde_json::from_str(&p.ok(&["doctor", "--json"], 1).stdout).expect("json");
    assert_eq!(check(&doc, "kms-idle")["status"], "warning");
    let service = check(&doc, "service-running");
    assert_eq!(service["status"], "failed");
    assert!(
        service["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Disabled")),
        "{service}"
    );
}

/// The HTML page in headless Chromium: it loads with no console message, draws one chart point
/// per day of the window, escapes host text, and its screenshot is the book's picture.
#[cfg(unix)]
#[test]
fn the_html_report_loads_in_chromium_with_one_point_per_day() {
    let chromium = std::path::Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "`chromium` is not installed: this test loads the HTML report in it; run `bash scripts/test.sh` (it installs the Debian package `chromium`)"
    );
    let p = cloned_fleet();
    let html = p.ok(&["clients", "--format", "html"], 0).stdout;
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external asset"
    );
    assert!(!html.contains("<script"), "no script");
    p.write("report.html", &html);
    let url = format!("file://{}", p.path("report.html").display());
    let profile = p.path("chromium-profile");
    let shot = p.path("report.png");
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,1700",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .expect("chromium");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains(":CONSOLE("),
        "a console message:\n{stderr}"
    );
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000),
        "{stderr}"
    );
    let dom = std::process::Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url)
        .output()
        .expect("chromium");
    let dom = String::from_utf8_lossy(&dom.stdout);
    let charts = dom.matches("<svg class=\"chart\"").count();
    assert_eq!(charts, 2, "windows and office-2019");
    // the 30-day window holds 31 days (today included): one point each, per chart
    assert_eq!(dom.matches("<circle class=\"point\"").count(), 31 * charts);
    assert_eq!(dom.matches("<tr class=\"dup\">").count(), 30);
    assert_eq!(dom.matches("<tr class=\"uncovered\">").count(), 1);
    if std::env::var_os("KMSCONF_UPDATE_DOCS").is_some() {
        let dest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/src/images/clients-report.png");
        std::fs::copy(&shot, dest).expect("copy the screenshot");
    }
}
