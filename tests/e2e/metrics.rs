//! `status --format openmetrics` and `doctor --format openmetrics` against lab hosts, one of them
//! unreadable, checked by Prometheus' own `promtool check metrics`; and `examples/monitoring`:
//! its textfile-collector script run for real, its alert rules through `promtool check rules`
//! and `promtool test rules`. Without `promtool` these tests fail: `scripts/test.sh` installs it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;

pub fn promtool() -> PathBuf {
    let path = PathBuf::from("/usr/bin/promtool");
    assert!(
        path.exists(),
        "`promtool` is not installed: these tests check the metrics with it; run `bash scripts/test.sh` (it installs the Debian package `prometheus`)"
    );
    path
}

/// `promtool check metrics` on `text`: it must find nothing to say.
pub fn check_metrics(text: &str) {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {:?}\n{}{}\n--- input\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two lab hosts on 127.0.0.1, on a port nothing listens on (not 1688, which the quickstart's
/// test may hold meanwhile), kms01 an activated KMS host with clients, kms02 set unreachable
/// after apply.
fn fleet() -> Project {
    let p = Project::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port();
    let host = |name: &str| {
        format!("[hosts.{name}]\ntarget = \"lab:lab/{name}.json\"\naddress = \"127.0.0.1\"\n\n[hosts.{name}.service]\nport = {closed}\n\n[hosts.{name}.firewall]\nrule_groups = [\"key-management-service\"]\n\n[hosts.{name}.products.windows]\nhost_key = {{ env = \"KMS_HOST_KEY\" }}\n\n")
    };
    p.write("kmsconf.toml", &[host("kms01"), host("kms02")].concat());
    p.ok(&["apply", "--auto-approve", "--json"], 0);
    p.ok(
        &["lab", "clients", "add", "lab/kms01.json", "--count", "7"],
        0,
    );
    p.ok(&["lab", "unreachable", "lab/kms02.json", "on"], 0);
    p
}

#[test]
fn status_metrics_pass_promtool_and_an_unread_host_is_only_down() {
    let p = fleet();
    let r = p.ok(&["status", "--format", "openmetrics"], 1);
    check_metrics(&r.stdout);
    assert!(r.stdout.ends_with("\n# EOF\n"), "{r:?}");
    // kms02 is only `kmsconf_host_up 0`
    assert_eq!(r.stdout.matches("host=\"kms02\"").count(), 1, "{r:?}");
    snapshot("status.prom", &r.stdout);
}

/// Issue 22, item 15: a product in its grace period has its time left in seconds, Prometheus'
/// base unit, which `promtool check metrics` requires of a `_remaining` gauge.
#[test]
fn grace_remaining_is_in_seconds_and_passes_promtool() {
    let p = Project::new();
    p.write("kmsconf.toml", &single_host(""));
    p.ok(&["lab", "offline", "lab/kms01.json", "on"], 0);
    p.ok(&["apply", "--auto-approve"], 1);
    let r = p.ok(&["status", "--format", "openmetrics"], 0);
    check_metrics(&r.stdout);
    assert!(
        r.stdout.contains(
            "kmsconf_product_grace_remaining_seconds{host=\"kms01\",product=\"windows\"} 2592000\n"
        ),
        "30 days of grace: {r:?}"
    );
    assert!(!r.stdout.contains("_minutes"), "{r:?}");
}

#[test]
fn doctor_metrics_pass_promtool_with_a_verdict_per_check() {
    let p = fleet();
    let r = p.ok(&["doctor", "--format", "openmetrics"], 1);
    check_metrics(&r.stdout);
    assert_eq!(r.stdout.matches("host=\"kms02\"").count(), 1, "{r:?}");
    // kms02 is only `kmsconf_host_up 0`; nothing listens on kms01's port (`port-reachable` 2),
    // and kms01 needs 25 for client Windows (`count-threshold` 1)
    snapshot("doctor.prom", &r.stdout);
    // `--json` stays the short form of `--format json`, and the two do not mix
    let json = p.ok(&["doctor", "--format", "json"], 1).stdout;
    assert_eq!(json, p.ok(&["doctor", "--json"], 1).stdout);
    p.ok(&["doctor", "--json", "--format", "openmetrics"], 1);
}

fn monitoring() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/monitoring")
}

fn promtool_ok(args: &[&str]) {
    let out = Command::new(promtool())
        .args(args)
        .current_dir(monitoring())
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "promtool {}: {:?}\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_alert_rules_pass_promtool_check_and_their_tests() {
    promtool_ok(&["check", "rules", "kmsconf-alerts.yml"]);
    promtool_ok(&["test", "rules", "kmsconf-alerts.test.yml"]);
}

#[test]
fn the_textfile_script_writes_both_files_whole_with_no_series_twice() {
    let p = fleet();
    let dir = p.path("textfile");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let run = || {
        Command::new("bash")
            .arg(monitoring().join("kmsconf-textfile.sh"))
            .current_dir(p.path(""))
            .env("KMSCONF", env!("CARGO_BIN_EXE_kmsconf"))
            .env("KMSCONF_CONFIG", p.path("kmsconf.toml"))
            .env("TEXTFILE_DIR", &dir)
            .env_remove("KMS_HOST_KEY")
            .output()
            .expect("bash")
    };
    let out = run();
    assert!(out.status.success(), "{out:?}");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "kmsconf-clients.prom",
            "kmsconf-doctor.prom",
            "kmsconf-status.prom"
        ]
    );
    let mut series = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(dir.join(f)).expect("read");
        check_metrics(&text);
        series.extend(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.rsplit_once(' ').map_or(l, |(s, _)| s).to_string()),
        );
    }
    let count = series.len();
    series.sort();
    series.dedup();
    assert_eq!(
        series.len(),
        count,
        "a series is in both files: node_exporter refuses that"
    );

    // a broken config: the files stay as they were, and the run says so
    let before = std::fs::read_to_string(dir.join("kmsconf-status.prom")).expect("read");
    p.write("kmsconf.toml", "[hosts.kms01]\n");
    let out = run();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("printed no complete metrics"));
    assert_eq!(
        std::fs::read_to_string(dir.join("kmsconf-status.prom")).expect("read"),
        before
    );
    assert_eq!(
        std::fs::read_dir(&dir).expect("dir").count(),
        3,
        "no temporary file is left"
    );
}

/// `examples/monitoring/grafana/kmsconf.json` is a Grafana dashboard (the fields Grafana needs
/// to import it, panels on its 24-column grid, a query per target, the `$host` variable it uses
/// defined), and every metric its queries name is one `status`, `doctor` or `clients` writes.
#[test]
fn the_grafana_dashboard_is_valid_and_queries_only_metrics_kmsconf_emits() {
    let p = fleet();
    let mut emitted = std::collections::BTreeSet::new();
    for (command, code) in [("status", 1), ("doctor", 1), ("clients", 1)] {
        let text = p.ok(&[command, "--format", "openmetrics"], code).stdout;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                emitted.insert(rest.split(' ').next().unwrap_or("").to_string());
            }
        }
    }
    assert!(emitted.contains("kmsconf_kms_clients"), "{emitted:?}");
    let text = std::fs::read_to_string(monitoring().join("grafana/kmsconf.json")).expect("read");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    for field in ["title", "uid"] {
        assert!(
            dash[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}"
        );
    }
    assert!(dash["schemaVersion"].as_u64().is_some_and(|v| v >= 30));
    let variables: Vec<&str> = dash["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    let panels = dash["panels"].as_array().expect("panels");
    let mut ids = std::collections::BTreeSet::new();
    let mut named = std::collections::BTreeSet::new();
    for panel in panels {
        assert!(
            ids.insert(panel["id"].as_u64().expect("id")),
            "panel ids are unique"
        );
        assert!(["timeseries", "stat"].contains(&panel["type"].as_str().unwrap_or("")));
        let grid = &panel["gridPos"];
        let cell = |k: &str| grid[k].as_u64().unwrap_or_else(|| panic!("gridPos.{k}"));
        assert!(cell("x") + cell("w") <= 24 && cell("h") > 0, "{grid}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            assert!(target["refId"].is_string());
            let expr = target["expr"].as_str().expect("expr");
            for variable in expr.split('$').skip(1) {
                let name: String = variable
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(variables.contains(&name.as_str()), "${name} in {expr}");
            }
            let mut word = String::new();
            for c in expr.chars().chain([' ']) {
                if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                    word.push(c);
                } else {
                    if word.starts_with("kmsconf_") {
                        named.insert(std::mem::take(&mut word));
                    }
                    word.clear();
                }
            }
        }
    }
    assert!(named.len() >= 7, "{named:?}");
    let unknown: Vec<&String> = named.iter().filter(|m| !emitted.contains(*m)).collect();
    assert!(
        unknown.is_empty(),
        "metrics kmsconf does not emit: {unknown:?}"
    );
}
