//! `winrm://` and `winrm+https://` targets against `tests/winrm/server.py`: a WinRM endpoint on
//! 127.0.0.1 with a real NTLM acceptor (pyspnego) that seals and unseals every body and refuses
//! plaintext over HTTP, whose `windows/shell/cmd` shell runs `kmsconf lab agent` on its own lab
//! file. Each command must make one connection and one authentication per host.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::*;
use crate::mit_kdc::{Kdc, REALM};

pub(crate) const PASSWORD: &str = "S3cret!pw-winrm";

/// The Python of the test venv `scripts/test.sh` makes.
pub(crate) fn python() -> String {
    std::env::var("KMSCONF_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("KMSCONF_TEST_PYTHON is not set: run the tests with `bash scripts/test.sh`, which makes the Python venv (pyspnego) the WinRM test endpoint needs")
    })
}

pub(crate) fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/winrm/server.py")
}

/// One test WinRM host.
pub struct Host {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Host {
    pub(crate) fn start(extra: &[&str]) -> Self {
        Self::start_with(extra, &[])
    }

    /// A host started with `extra` arguments and `env` variables.
    pub(crate) fn start_with(extra: &[&str], env: &[(&str, &Path)]) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("users"), format!("LAB:alice:{PASSWORD}\n")).expect("users");
        let port_file = dir.path().join("port");
        let child = Command::new(python())
            .arg(script())
            .arg("--port-file")
            .arg(&port_file)
            .arg("--kmsconf")
            .arg(env!("CARGO_BIN_EXE_kmsconf"))
            .arg("--lab")
            .arg(dir.path().join("lab.json"))
            .arg("--stats")
            .arg(dir.path().join("stats.json"))
            .arg("--log")
            .arg(dir.path().join("server.log"))
            .args(extra)
            .env("NTLM_USER_FILE", dir.path().join("users"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the test WinRM server");
        let start = std::time::Instant::now();
        let port = loop {
            if let Some(p) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                break p;
            }
            assert!(
                start.elapsed().as_secs() < 30,
                "the WinRM server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        Self { child, port, dir }
    }

    /// The server's counters.
    pub fn stats(&self) -> serde_json::Value {
        std::fs::read_to_string(self.dir.path().join("stats.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::json!({}))
    }

    pub(crate) fn count(&self, name: &str) -> u64 {
        self.stats()[name].as_u64().unwrap_or(0)
    }

    pub(crate) fn lab(&self) -> String {
        self.dir.path().join("lab.json").display().to_string()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A host table reaching `host` at `url` (`winrm://…` or `winrm+https://…`), with `winrm`
/// lines in its `[hosts.NAME.winrm]` table.
pub(crate) fn host_table(name: &str, url: &str, winrm: &str) -> String {
    format!(
        "[hosts.{name}]\ntarget = \"{url}\"\n\n\
         [hosts.{name}.winrm]\npassword = {{ env = \"WINRM_PASSWORD\" }}\n{winrm}\n\n\
         [hosts.{name}.products.windows]\nhost_key = {{ env = \"KMS_HOST_KEY\" }}\n\n\
         [hosts.{name}.service]\nport = 1689\nactivation_interval = 60\n\n\
         [hosts.{name}.firewall]\nrule_groups = [\"key-management-service\"]\nprofiles = [\"domain\", \"private\"]\n\n"
    )
}

pub(crate) fn http_url(h: &Host) -> String {
    format!("winrm://LAB\\\\alice@127.0.0.1:{}", h.port)
}

pub(crate) fn project(config: &str) -> Project {
    let mut p = Project::new();
    p.write("kmsconf.toml", config);
    p.env("WINRM_PASSWORD", PASSWORD);
    p.env("KMSCONF_TIMEOUT", "60");
    p
}

/// Runs `args`, asserts the exit code, and that each of `hosts` saw one connection and one
/// authentication, and no plaintext body.
pub(crate) fn once_per_host(hosts: &[&Host], p: &Project, args: &[&str], code: i32) -> Run {
    let before: Vec<(u64, u64)> = hosts
        .iter()
        .map(|h| (h.count("connections"), h.count("authentications")))
        .collect();
    let r = p.ok(args, code);
    for (h, (connections, authentications)) in hosts.iter().zip(before) {
        assert_eq!(
            (
                h.count("connections") - connections,
                h.count("authentications") - authentications
            ),
            (1, 1),
            "kmsconf {}: one connection and one authentication per host\n{r:?}\n{}",
            args.join(" "),
            h.stats()
        );
        assert_eq!(h.count("plaintext_refused"), 0, "{}", h.stats());
    }
    r
}

#[test]
fn plan_apply_and_saved_plans_converge_over_winrm_with_one_connection_per_host() {
    let a = Host::start(&[]);
    let b = Host::start(&[]);
    let config = host_table("kms0", &http_url(&a), "auth = \"ntlm\"")
        + &host_table("kms1", &http_url(&b), "");
    let mut p = project(&config);
    let hosts = [&a, &b];
    let plan = once_per_host(&hosts, &p, &["plan", "--detailed-exitcode"], 2);
    assert!(plan.stdout.contains("products.windows"), "{plan:?}");
    p.env("KMSCONF_LOG", "kmsconf_targets=trace");
    // recorded too: a WinRM session records as an ssh one does, and never holds the password
    p.env("KMSCONF_RECORD", &p.path("recorded").display().to_string());
    let applied = once_per_host(&hosts, &p, &["apply", "--auto-approve"], 0);
    p.unset("KMSCONF_LOG");
    p.unset("KMSCONF_RECORD");
    for host in ["kms0", "kms1"] {
        let recording = p.read(&format!("recorded/{host}.jsonl"));
        assert!(
            recording.contains(r#"\"op\":\"install_product_key\""#)
                && recording.contains("winrm://"),
            "{recording}"
        );
        for canary in [PASSWORD, WINDOWS_KEY, "HJKMP"] {
            assert!(!recording.contains(canary), "a secret was recorded");
        }
    }
    assert!(
        applied
            .stdout
            .contains("installed key *****-*****-*****-*****-6789B")
            && applied
                .stdout
                .contains("Software Protection service restarted"),
        "{applied:?}"
    );
    let everything = applied.all();
    assert!(!everything.contains("HJKMP"), "a key was printed");
    assert!(!everything.contains(PASSWORD), "the password was printed");
    once_per_host(&hosts, &p, &["plan", "--detailed-exitcode"], 0);

    p.write(
        "kmsconf.toml",
        &config.replace("activation_interval = 60", "activation_interval = 120"),
    );
    once_per_host(&hosts, &p, &["plan", "--out", "change.plan"], 0);
    let saved = std::fs::read_to_string(p.path("change.plan")).expect("plan file");
    assert!(
        saved.contains("WINRM_PASSWORD") && !saved.contains(PASSWORD),
        "the plan holds the password's reference only"
    );
    // the saved plan connects without the config
    std::fs::remove_file(p.path("kmsconf.toml")).expect("rm config");
    let applied = once_per_host(&hosts, &p, &["apply", "change.plan"], 0);
    assert!(
        applied.stdout.contains("service.activation_interval"),
        "{applied:?}"
    );
    p.write(
        "kmsconf.toml",
        &config.replace("activation_interval = 60", "activation_interval = 120"),
    );
    once_per_host(&hosts, &p, &["plan", "--detailed-exitcode"], 0);
    once_per_host(&hosts, &p, &["status"], 0);
    let doctor = p.run(&["doctor"]);
    assert!(!doctor.all().contains(PASSWORD), "{doctor:?}");
    for h in hosts {
        h.wait_for_deleted();
    }
    let lab = p.ok(&["lab", "show", &b.lab()], 0);
    assert!(
        lab.stdout.contains("\"activation_interval\": 120"),
        "{lab:?}"
    );

    // export over WinRM, the password from KMSCONF_WINRM_PASSWORD
    p.env("KMSCONF_WINRM_PASSWORD", PASSWORD);
    let target = format!("winrm://LAB\\alice@127.0.0.1:{}", a.port);
    let exported = once_per_host(&[&a], &p, &["export", "--target", &target], 0);
    assert!(
        exported.stdout.contains("activation_interval = 120"),
        "{exported:?}"
    );
}

#[test]
fn a_wrong_password_a_closed_port_and_a_fault_are_each_told_plainly() {
    let h = Host::start(&["--fault-on", "Create:quota"]);
    let mut p = project(&host_table("kms0", &http_url(&h), "auth = \"ntlm\""));
    let quota = p.ok(&["plan"], 1);
    assert!(
        quota.all().contains("QuotaLimit") && quota.all().contains("2144108120"),
        "{quota:?}"
    );

    let h = Host::start(&["--fault-on", "Create:access-denied"]);
    p.write("kmsconf.toml", &host_table("kms0", &http_url(&h), ""));
    let denied = p.ok(&["status"], 1);
    assert!(
        denied.all().contains("AccessDenied") && denied.all().contains("Access is denied"),
        "{denied:?}"
    );

    let h = Host::start(&[]);
    p.write("kmsconf.toml", &host_table("kms0", &http_url(&h), ""));
    // force-unlock goes through the host's WinRM session like any other request
    let unlock = once_per_host(&[&h], &p, &["force-unlock", "kms0", "0123456789abcdef"], 1);
    assert!(
        unlock.all().contains("the host is not locked"),
        "{unlock:?}"
    );
    // every crate's trace, sspi's included, shows no password
    p.env("KMSCONF_LOG", "trace");
    let traced = once_per_host(&[&h], &p, &["plan"], 0);
    p.unset("KMSCONF_LOG");
    assert!(traced.stderr.contains("WinRM shell started"), "{traced:?}");
    assert!(!traced.all().contains(PASSWORD), "the password was traced");
    p.env("WINRM_PASSWORD", "not-the-password");
    let shells = h.count("shells_created");
    let refused = p.ok(&["plan"], 1);
    assert!(
        refused.all().contains("was refused (HTTP 401)") && refused.all().contains("LAB\\alice"),
        "{refused:?}"
    );
    assert!(!refused.all().contains("not-the-password"));
    assert_eq!(
        h.count("shells_created"),
        shells,
        "no shell without authentication"
    );

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    p.env("WINRM_PASSWORD", PASSWORD);
    p.write(
        "kmsconf.toml",
        &host_table(
            "kms0",
            &format!("winrm://LAB\\\\alice@127.0.0.1:{closed}"),
            "",
        ),
    );
    let unreachable = p.ok(&["plan"], 1);
    assert!(
        unreachable.all().contains("cannot connect to 127.0.0.1"),
        "{unreachable:?}"
    );
}

/// kmsconf never takes an unsealed answer over HTTP, nor a sealed one that fails its integrity
/// check: the endpoint sends one of each on the first Receive.
#[test]
fn an_unsealed_or_tampered_answer_over_http_is_refused() {
    for (kind, said) in [
        ("plaintext", "unsealed"),
        ("tamper", "failed its integrity check"),
    ] {
        let h = Host::start(&["--fault-on", &format!("Receive:{kind}")]);
        let p = project(&host_table("kms0", &http_url(&h), ""));
        let refused = p.ok(&["plan"], 1);
        assert!(refused.all().contains(said), "{kind}: {refused:?}");
        assert!(
            refused.all().contains("1 host could not be planned"),
            "{kind}: {refused:?}"
        );
    }
}

#[test]
fn a_connection_dropped_mid_batch_says_what_ran_and_a_rerun_converges() {
    // the third Receive of a run is the first one waiting on the batch (lock, discovery, batch)
    let h = Host::start(&["--fault-on", "Receive:drop:3"]);
    let p = project(&host_table("kms0", &http_url(&h), ""));
    let applied = p.run(&["apply", "--auto-approve"]);
    assert_eq!(applied.code, 1, "{applied:?}");
    let out = applied.all();
    assert!(out.contains("the connection dropped"), "{out}");
    // the lost shell (and the agent in it, holding the apply lock) was removed through a new
    // connection, so the lock was released and the rerun is not refused
    assert!(!out.contains("could not release the apply lock"), "{out}");
    h.wait_for_deleted();
    let rerun = p.ok(&["apply", "--auto-approve"], 0);
    assert!(!rerun.all().contains("not run"), "{rerun:?}");
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn an_agent_that_does_not_answer_in_time_is_a_timeout() {
    let h = Host::start(&[]);
    let mut p = project(&host_table("kms0", &http_url(&h), "operation_timeout = 1"));
    p.ok(&["plan"], 0);
    p.ok(&["lab", "latency", &h.lab(), "8000"], 0);
    p.env("KMSCONF_TIMEOUT", "3");
    let slow = p.ok(&["plan"], 1);
    assert!(slow.all().contains("no answer within 3 s"), "{slow:?}");
    // the shell was removed although the run gave up on it
    h.wait_for_deleted();
}

impl Host {
    pub(crate) fn wait_for_deleted(&self) {
        let start = std::time::Instant::now();
        loop {
            let s = self.stats();
            let created = s["shells_created"].as_u64().unwrap_or(0);
            let deleted = s["requests_by_action"]["Delete"].as_u64().unwrap_or(0);
            if created == deleted {
                return;
            }
            assert!(start.elapsed().as_secs() < 20, "shells left behind: {s}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// HTTPS: a CA file, the system roots (which do not know the test CA), a certificate for
/// another name, and Basic auth (allowed over HTTPS only).
#[test]
fn https_checks_the_certificate_and_allows_basic() {
    let certs = tempfile::tempdir().expect("dir");
    for extra in [None, Some("--wrong-name")] {
        let made = Command::new(python())
            .arg(script())
            .args(["make-cert", "--dir"])
            .arg(certs.path())
            .args(extra)
            .status()
            .expect("make-cert");
        assert!(made.success());
    }
    let cert = |n: &str| certs.path().join(n).display().to_string();
    let h = Host::start(&[
        "--https",
        &cert("cert.pem"),
        &cert("key.pem"),
        "--allow-basic",
    ]);
    let url = format!("winrm+https://LAB\\\\alice@127.0.0.1:{}", h.port);
    let ca = format!("ca_file = \"{}\"", cert("ca.pem"));
    let p = project(&host_table("kms0", &url, &ca));
    once_per_host(&[&h], &p, &["plan", "--detailed-exitcode"], 2);
    once_per_host(&[&h], &p, &["apply", "--auto-approve"], 0);

    p.write("kmsconf.toml", &host_table("kms0", &url, ""));
    let unknown = p.ok(&["plan"], 1);
    assert!(
        unknown.all().contains("not signed by a trusted CA"),
        "{unknown:?}"
    );

    let wrong = Host::start(&["--https", &cert("wrong-cert.pem"), &cert("wrong-key.pem")]);
    let url = format!("winrm+https://LAB\\\\alice@127.0.0.1:{}", wrong.port);
    p.write("kmsconf.toml", &host_table("kms0", &url, &ca));
    let mismatch = p.ok(&["plan"], 1);
    assert!(
        mismatch.all().contains("is not issued for `127.0.0.1`"),
        "{mismatch:?}"
    );

    let url = format!("winrm+https://alice@127.0.0.1:{}", h.port);
    p.write(
        "kmsconf.toml",
        &host_table("kms0", &url, &format!("{ca}\nauth = \"basic\"")),
    );
    once_per_host_basic(&h, &p);
}

/// Basic authenticates every request rather than the connection: one connection, no
/// negotiation.
fn once_per_host_basic(h: &Host, p: &Project) {
    let before = h.count("connections");
    p.ok(&["plan", "--detailed-exitcode"], 0);
    assert_eq!(h.count("connections") - before, 1, "{}", h.stats());
}

/// `auth = "kerberos"` (Kerberos inside SPNEGO) against Debian's MIT KDC: sspi gets its tickets
/// from the realm's KDC, the test host accepts them with MIT krb5 and the keytab of
/// `HTTP/localhost`, and every body is sealed in Kerberos wrap tokens both ways. The account is
/// named `REALM\user`: sspi sends a UPN (`user@REALM`) as an enterprise name, which MIT's KDC
/// does not look up (CLIENT_NOT_FOUND).
#[test]
fn kerberos_authenticates_and_seals_against_an_mit_kdc() {
    let kdc = Kdc::start(&[("alice", PASSWORD)], &["HTTP/localhost"]);
    let h = Host::start_with(
        &["--keytab", &kdc.keytab().display().to_string()],
        &[("KRB5_CONFIG", &kdc.krb5_conf())],
    );
    let url = format!("winrm://{REALM}\\\\alice@localhost:{}", h.port);
    let mut p = project(&host_table("kms0", &url, "auth = \"kerberos\""));
    // the KDC found through krb5.conf's realm
    p.env("KRB5_CONFIG", &kdc.krb5_conf().display().to_string());
    let hosts = [&h];
    once_per_host(&hosts, &p, &["plan", "--detailed-exitcode"], 2);
    let applied = once_per_host(&hosts, &p, &["apply", "--auto-approve"], 0);
    assert!(
        applied
            .stdout
            .contains("installed key *****-*****-*****-*****-6789B"),
        "{applied:?}"
    );
    assert!(
        !applied.all().contains(PASSWORD),
        "the password was printed"
    );
    once_per_host(&hosts, &p, &["plan", "--detailed-exitcode"], 0);
    // or named by SSPI_KDC_URL, with no krb5.conf at all
    p.env("KRB5_CONFIG", &p.path("no-krb5.conf").display().to_string());
    p.env("SSPI_KDC_URL", &format!("tcp://127.0.0.1:{}", kdc.port));
    once_per_host(&hosts, &p, &["status"], 0);
    assert_eq!(
        h.stats()["authentications_by_protocol"],
        serde_json::json!({"kerberos": 4}),
        "Kerberos, never NTLM"
    );

    p.env("WINRM_PASSWORD", "not-the-password");
    let refused = p.ok(&["plan"], 1);
    assert!(refused.all().contains("PREAUTH_FAILED"), "{refused:?}");
    assert!(!refused.all().contains("not-the-password"));
    // kmsconf says it once; sspi's own log lines stay out unless KMSCONF_LOG asks for them
    assert!(!refused.stderr.contains("sspi::"), "{refused:?}");
    assert_eq!(
        h.count("shells_created"),
        4,
        "no shell without authentication"
    );
    h.wait_for_deleted();
}

/// A run keeps one connection per host open from lock to unlock: kmsconf raises its open-file
/// soft limit to the hard limit, so a soft limit of 256 does not cut a fleet of WinRM (or ssh)
/// hosts short.
#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit() {
    let hard = Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .expect("ulimit");
    let hard = String::from_utf8_lossy(&hard.stdout).trim().to_string();
    let p = Project::example("single-os-host");
    let out = Command::new("sh")
        .args([
            "-c",
            "ulimit -Sn 256 && exec \"$0\" validate",
            env!("CARGO_BIN_EXE_kmsconf"),
        ])
        .current_dir(p.dir.path())
        .env("KMSCONF_LOG", "kmsconf=debug")
        .output()
        .expect("run kmsconf");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let limit = stderr
        .split("open-file limit limit=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    match hard.parse::<u64>() {
        Ok(hard) => assert_eq!(limit, hard.to_string(), "{stderr}"),
        // `unlimited`: raised as far as the kernel allows, well past 256
        Err(_) => assert!(limit.parse::<u64>().is_ok_and(|l| l > 256), "{stderr}"),
    }
}
