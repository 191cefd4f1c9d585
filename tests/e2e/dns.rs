//! DNS: the `_vlmcs._tcp` SRV records converged in a real BIND 9 (`named`, Debian's `bind9`)
//! started on 127.0.0.1 on a free port, checked with `dig` and changed behind kmsconf's back
//! with `nsupdate` (`bind9-dnsutils`). Without those programs these tests fail: `scripts/test.sh`
//! installs them.

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A test-only TSIG secret (32 random bytes, base64, as `tsig-keygen` prints them).
pub(crate) const SECRET: &str = "ATSV6v4vFfNOo1xANYr5m1GtHveSqjzLBk8r45sOiJk=";
/// A well-formed secret the server does not have.
const WRONG_SECRET: &str = "q1Y3Vg9k0yJ0Zr4mQbZpO8k7m3N2q5Tt4w9x8yZ1abc=";

/// A running `named`, stopped by its PID when dropped (also when a test fails).
pub(crate) struct Bind {
    child: Child,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn require(program: &str, package: &str) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let path = Path::new(dir).join(program);
        if path.exists() {
            return path;
        }
    }
    panic!("`{program}` is not installed: these tests need it; run `apt-get install -y {package}` (`bash scripts/test.sh` does)");
}

/// A port free for both UDP and TCP on 127.0.0.1.
fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

/// A port free for both UDP and TCP on `address`.
pub(crate) fn free_port_on(address: &str) -> u16 {
    loop {
        let udp = UdpSocket::bind((address, 0)).expect("udp");
        let port = udp.local_addr().expect("addr").port();
        if TcpListener::bind((address, port)).is_ok() {
            return port;
        }
    }
}

/// `dig +short` of one name and type at `address`:`port`, sorted lines.
pub(crate) fn dig(address: &str, port: u16, name: &str, kind: &str) -> Vec<String> {
    let out = Command::new(require("dig", "bind9-dnsutils"))
        .args(["+short", "+norec", "+time=1", "+tries=1", "-p"])
        .arg(port.to_string())
        .args([&format!("@{address}"), name, kind])
        .output()
        .expect("dig");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

impl Bind {
    /// Starts `named` with the zones `corp.example` and `lab.example`, where key `kmsconf-key`
    /// may change the `_vlmcs._tcp` SRV records, and waits until it answers.
    pub(crate) fn start() -> Bind {
        Bind::start_with(SECRET)
    }

    /// Like [`Bind::start`], with key `kmsconf-key` holding `secret`.
    fn start_with(secret: &str) -> Bind {
        let named = require("named", "bind9");
        require("dig", "bind9-dnsutils");
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path().display().to_string();
        let port = free_port();
        let key = format!(
            "key \"kmsconf-key\" {{\n  algorithm hmac-sha256;\n  secret \"{secret}\";\n}};\n"
        );
        std::fs::write(dir.path().join("key.conf"), key).expect("key");
        let mut conf = format!(
            "options {{\n  directory \"{d}\";\n  pid-file \"{d}/named.pid\";\n  session-keyfile \"{d}/session.key\";\n  managed-keys-directory \"{d}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  recursion no;\n  dnssec-validation no;\n}};\ncontrols {{ }};\ninclude \"{d}/key.conf\";\n"
        );
        for zone in ["corp.example", "lab.example"] {
            conf.push_str(&format!(
                "zone \"{zone}\" {{\n  type primary;\n  file \"{d}/{zone}.zone\";\n  update-policy {{ grant kmsconf-key name _vlmcs._tcp.{zone}. SRV; }};\n}};\n"
            ));
            let records = format!(
                "$TTL 3600\n@ IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 300\n@ IN NS ns1.{zone}.\nns1 IN A 127.0.0.1\nkms01 IN A 10.0.0.1\n"
            );
            std::fs::write(dir.path().join(format!("{zone}.zone")), records).expect("zone");
        }
        std::fs::write(dir.path().join("named.conf"), conf).expect("conf");
        let log = std::fs::File::create(dir.path().join("named.log")).expect("log");
        let child = Command::new(named)
            .args(["-g", "-c"])
            .arg(dir.path().join("named.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start named");
        let mut bind = Bind { child, port, dir };
        bind.wait_until_answering();
        bind
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("named.log")).unwrap_or_default()
    }

    fn wait_until_answering(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("named exited ({status}) before answering:\n{}", self.log());
            }
            if !self.dig("corp.example", "SOA").is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("named did not answer within 20 seconds:\n{}", self.log());
    }

    /// `dig +short` of one name and type, sorted lines.
    fn dig(&self, name: &str, kind: &str) -> Vec<String> {
        dig("127.0.0.1", self.port, name, kind)
    }

    pub(crate) fn srv(&self, zone: &str) -> Vec<String> {
        self.dig(&format!("_vlmcs._tcp.{zone}"), "SRV")
    }

    /// Changes records behind kmsconf's back: `nsupdate` with the same key.
    fn nsupdate(&self, zone: &str, commands: &str) {
        let script = format!(
            "server 127.0.0.1 {}\nzone {zone}\n{commands}\nsend\n",
            self.port
        );
        let mut child = Command::new(require("nsupdate", "bind9-dnsutils"))
            .arg("-k")
            .arg(self.dir.path().join("key.conf"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nsupdate");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("nsupdate");
        assert!(
            out.status.success(),
            "nsupdate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Two hosts published in two zones; kms01 on a custom port (which needs its KMS host key and
/// activation first), kms02 at the default port.
fn config(port: u16, exclusive: bool) -> String {
    format!(
        r#"[dns]
server = "127.0.0.1:{port}"
zones = ["corp.example", "lab.example"]
ttl = 3600
exclusive = {exclusive}
tsig = {{ name = "kmsconf-key", algorithm = "hmac-sha256", secret = {{ env = "KMSCONF_TSIG_SECRET" }} }}

[hosts.kms01]
target = "lab:lab/kms01.json"
address = "kms01.corp.example"

[hosts.kms01.service]
port = 1689
dns_publishing = false

[hosts.kms01.products.windows]
host_key = {{ env = "KMS_HOST_KEY" }}

[hosts.kms01.dns]
priority = 0
weight = 100

[hosts.kms02]
target = "lab:lab/kms02.json"
address = "kms02.corp.example"

[hosts.kms02.dns]
priority = 10
weight = 50
"#
    )
}

/// The config of issue 3's contract, verbatim but for the server's port.
const CONTRACT: &str = r#"[dns]
server = "127.0.0.1:15353"              # the authoritative server that takes updates
zones = ["corp.example"]                # each published host gets an SRV record in each zone
ttl = 3600
exclusive = false                       # true: kmsconf owns the whole _vlmcs._tcp RRset
tsig = { name = "kmsconf-key", algorithm = "hmac-sha256", secret = { env = "KMSCONF_TSIG_SECRET" } }

[hosts.kms01]
target = "lab:state/kms01.json"
address = "kms01.corp.example"          # the SRV target; required when the host is published

[hosts.kms01.dns]                       # present = publish this host
priority = 0
weight = 100                            # the port is the host's [service] port, else 1688
"#;

/// A fresh secret as `tsig-keygen` prints it.
fn tsig_keygen() -> String {
    let out = Command::new(require("tsig-keygen", "bind9"))
        .args(["-a", "hmac-sha256", "kmsconf-key"])
        .output()
        .expect("tsig-keygen");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split('"')
        .nth(3)
        .unwrap_or_else(|| panic!("no secret in:\n{text}"))
        .to_string()
}

#[test]
fn the_contract_config_with_a_tsig_keygen_secret_validates_plans_and_applies() {
    let secret = tsig_keygen();
    let bind = Bind::start_with(&secret);
    let mut p = Project::new();
    p.write(
        "kmsconf.toml",
        &CONTRACT.replace("127.0.0.1:15353", &format!("127.0.0.1:{}", bind.port)),
    );
    p.env("KMSCONF_TSIG_SECRET", &secret);
    p.ok(&["validate"], 0);
    let plan = json(&p.ok(&["plan", "--json"], 0));
    let changes = plan["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "{plan:#}");
    assert_eq!(changes[0]["host"], "dns");
    assert_eq!(
        changes[0]["address"],
        "corp.example/_vlmcs._tcp/kms01.corp.example"
    );
    assert_eq!(changes[0]["action"], "create");
    assert_eq!(changes[0]["after"]["port"], 1688);
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(bind.srv("corp.example"), ["0 100 1688 kms01.corp.example."]);
    p.ok(&["plan", "--detailed-exitcode"], 0);
    let all = [
        &p.ok(&["plan", "--json"], 0),
        &p.ok(&["apply", "--auto-approve"], 0),
    ]
    .map(Run::all)
    .concat();
    assert!(!all.contains(&secret), "the TSIG secret leaked");
}

fn project(bind: &Bind, exclusive: bool) -> Project {
    let mut p = Project::new();
    p.write("kmsconf.toml", &config(bind.port, exclusive));
    p.env("KMSCONF_TSIG_SECRET", SECRET);
    p
}

pub(crate) fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"))
}

#[test]
fn records_converge_in_bind_and_a_second_plan_has_no_changes() {
    let bind = Bind::start();
    let p = project(&bind, false);
    let plan = json(&p.ok(&["plan", "--json"], 0));
    let dns: Vec<&serde_json::Value> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["host"] == "dns")
        .collect();
    let addresses: Vec<&str> = dns
        .iter()
        .map(|c| c["address"].as_str().expect("a"))
        .collect();
    assert_eq!(
        addresses,
        [
            "corp.example/_vlmcs._tcp/kms01.corp.example",
            "corp.example/_vlmcs._tcp/kms02.corp.example",
            "lab.example/_vlmcs._tcp/kms01.corp.example",
            "lab.example/_vlmcs._tcp/kms02.corp.example",
        ]
    );
    assert!(dns.iter().all(|c| c["action"] == "create"));
    assert_eq!(dns[0]["after"]["port"], 1689, "the host's [service] port");
    assert_eq!(dns[1]["after"]["port"], 1688, "the default port");
    assert_eq!(dns[1]["after"]["priority"], 10);
    assert_eq!(
        dns[0]["equivalent"],
        "nsupdate: update add _vlmcs._tcp.corp.example. 3600 SRV 0 100 1689 kms01.corp.example."
    );
    assert_eq!(
        dns[0]["note"],
        "written after host `kms01` converges: its `service.port` changes to 1689"
    );
    let human = p
        .ok(&["plan"], 0)
        .stdout
        .replace(&bind.port.to_string(), "PORT");
    snapshot("dns-plan.txt", &human);

    let applied = json(&p.ok(&["apply", "--auto-approve", "--json"], 0));
    let entry = applied["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .find(|h| h["name"] == "dns")
        .expect("dns entry");
    assert_eq!(entry["batches"], 1, "{applied}");
    assert!(
        entry["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .all(|c| c["status"] == "applied"),
        "{applied}"
    );
    let expected = [
        "0 100 1689 kms01.corp.example.",
        "10 50 1688 kms02.corp.example.",
    ];
    assert_eq!(bind.srv("corp.example"), expected);
    assert_eq!(bind.srv("lab.example"), expected);
    let again = p.ok(&["plan", "--detailed-exitcode"], 0);
    assert!(
        again.stdout.contains("host dns (dns:127.0.0.1:"),
        "{again:?}"
    );
    assert!(again.stdout.contains("No changes"), "{again:?}");
}

#[test]
fn drift_shows_in_plan_foreign_records_stay_unless_exclusive_and_stale_plans_are_refused() {
    let bind = Bind::start();
    let p = project(&bind, false);
    p.ok(&["apply", "--auto-approve"], 0);
    bind.nsupdate(
        "corp.example",
        "update delete _vlmcs._tcp.corp.example. SRV 10 50 1688 kms02.corp.example.\nupdate add _vlmcs._tcp.corp.example. 3600 SRV 10 0 1688 kms02.corp.example.\nupdate add _vlmcs._tcp.corp.example. 3600 SRV 20 0 1688 old.corp.example.",
    );
    let drift = p.ok(&["plan", "--detailed-exitcode"], 2);
    let out = drift.stdout.replace(&bind.port.to_string(), "PORT");
    snapshot("dns-drift-plan.txt", &out);

    // the RRset changes again between plan and apply: the saved plan is refused
    p.ok(&["plan", "--out", "plan.json"], 0);
    bind.nsupdate(
        "corp.example",
        "update add _vlmcs._tcp.corp.example. 3600 SRV 30 0 1688 other.corp.example.",
    );
    let stale = p.ok(&["apply", "plan.json"], 1);
    assert!(
        stale.stderr.contains("the saved plan is stale"),
        "{stale:?}"
    );
    assert!(
        stale
            .stderr
            .contains("host `dns` changed since the plan was made"),
        "{stale:?}"
    );
    assert!(
        stale.stderr.contains("zone corp.example: 0 100 1689 kms01.corp.example. (ttl 3600), 10 0 1688 kms02.corp.example. (ttl 3600), 20 0 1688 old.corp.example. (ttl 3600) -> 0 100 1689 kms01.corp.example. (ttl 3600), 10 0 1688 kms02.corp.example. (ttl 3600), 20 0 1688 old.corp.example. (ttl 3600), 30 0 1688 other.corp.example. (ttl 3600)"),
        "{stale:?}"
    );
    assert!(bind
        .srv("corp.example")
        .contains(&"10 0 1688 kms02.corp.example.".to_string()));

    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        bind.srv("corp.example"),
        [
            "0 100 1689 kms01.corp.example.",
            "10 50 1688 kms02.corp.example.",
            "20 0 1688 old.corp.example.",
            "30 0 1688 other.corp.example.",
        ],
        "records no host declares are left alone"
    );

    let owned = project(&bind, true);
    let plan = owned.ok(&["plan"], 0);
    assert!(
        plan.stdout.contains("- corp.example/_vlmcs._tcp/old.corp.example: { port = 1688, priority = 20, target = \"old.corp.example\", ttl = 3600, weight = 0 }"),
        "{plan:?}"
    );
    owned.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        bind.srv("corp.example"),
        [
            "0 100 1689 kms01.corp.example.",
            "10 50 1688 kms02.corp.example."
        ]
    );
    owned.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn a_wrong_tsig_secret_is_refused_with_a_clear_error_and_changes_nothing() {
    let bind = Bind::start();
    let mut p = project(&bind, false);
    p.env("KMSCONF_TSIG_SECRET", WRONG_SECRET)
        .env("KMSCONF_LOG", "trace");
    let r = p.ok(&["apply", "--auto-approve"], 1);
    let unset = {
        let mut q = project(&bind, false);
        q.unset("KMSCONF_TSIG_SECRET");
        let applied = q.ok(&["apply", "--auto-approve"], 1);
        assert!(
            applied
                .stdout
                .contains("environment variable `KMSCONF_TSIG_SECRET` is not set"),
            "{applied:?}"
        );
        q.ok(&["plan"], 0)
    };
    assert!(
        unset.stdout.contains("note: the secret of TSIG key `kmsconf-key` (env `KMSCONF_TSIG_SECRET`) cannot be read now: apply will fail until it can"),
        "{unset:?}"
    );
    let message = format!(
        "DNS server `127.0.0.1:{}`, zone `corp.example`: TSIG authentication failed (BADSIG)",
        bind.port
    );
    assert!(r.stdout.contains(&message), "{r:?}");
    assert!(r.stdout.contains("zone `lab.example`"), "{r:?}");
    assert!(!r.all().contains(WRONG_SECRET) && !r.all().contains(&WRONG_SECRET[..12]));
    assert!(bind.srv("corp.example").is_empty() && bind.srv("lab.example").is_empty());
}

#[test]
fn dns_waits_for_the_hosts_and_is_skipped_when_one_fails() {
    let bind = Bind::start();
    let p = project(&bind, false);
    p.ok(
        &[
            "lab",
            "fault",
            "lab/kms01.json",
            "--op",
            "set-service",
            "--hresult",
            "0x80070005",
            "--times",
            "1",
        ],
        0,
    );
    let r = p.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.stdout
            .contains("skipped  corp.example/_vlmcs._tcp/kms01.corp.example: because host `kms01` (a dependency) did not converge"),
        "{r:?}"
    );
    assert!(
        bind.srv("corp.example").is_empty(),
        "no record before its port is set"
    );
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(bind.srv("corp.example").len(), 2);
}

#[test]
fn a_server_that_does_not_answer_times_out_with_a_clear_error() {
    // a UDP socket that never answers: every query is lost
    let silent = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let port = silent.local_addr().expect("addr").port();
    let mut p = Project::new();
    p.write("kmsconf.toml", &config(port, false));
    p.env("KMSCONF_TSIG_SECRET", SECRET);
    let start = Instant::now();
    let r = p.ok(&["plan", "--host", "dns"], 1);
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(
        r.stdout.contains(&format!(
            "host dns: cannot plan: DNS server `127.0.0.1:{port}`: it did not answer within 5 seconds (3 tries over UDP"
        )),
        "{r:?}"
    );
    drop(silent);
}

#[test]
fn a_zone_the_server_does_not_serve_is_a_plan_error() {
    let bind = Bind::start();
    let p = project(&bind, false);
    p.write(
        "kmsconf.toml",
        &config(bind.port, false).replace("\"lab.example\"]", "\"other.example\"]"),
    );
    let r = p.ok(&["plan", "--host", "dns"], 1);
    assert!(
        r.stdout
            .contains("it refused the query for zone `other.example` (REFUSED)"),
        "{r:?}"
    );
}

/// `kmsconf validate` on `config`: its exit code and stderr.
fn validate(config: &str, code: i32) -> String {
    let mut p = Project::new();
    p.env("KMSCONF_TSIG_SECRET", SECRET);
    p.write("kmsconf.toml", config);
    p.ok(&["validate"], code).stderr
}

#[test]
fn validate_checks_the_dns_table_with_positions() {
    let e = validate(
        r#"[dns]
server = "127.0.0.1:99999"
zones = ["_vlmcs._tcp.corp.example", "bad_zone-.example", "lab.example", "LAB.example."]
ttl = -1
tsig = { name = "kmsconf-key", algorithm = "hmac-md5", secret = { env = "KMSCONF_TSIG_SECRET" } }
"#,
        1,
    );
    assert!(e.contains("kmsconf.toml:5:44: unknown variant `hmac-md5`, expected one of `hmac-sha256`, `hmac-sha384`, `hmac-sha512`"), "{e}");
    let e = validate(
        r#"[dns]
server = "127.0.0.1:99999"
zones = ["_vlmcs._tcp.corp.example", "bad_zone-.example", "lab.example", "LAB.example."]
ttl = -1
tsig = { name = "kmsconf-key", secret = "not base64!" }
"#,
        1,
    );
    // the first line of each diagnostic; its source excerpt follows it
    let lines: Vec<&str> = e
        .lines()
        .filter(|l| l.starts_with("kmsconf.toml:"))
        .collect();
    assert_eq!(
        lines,
        [
            "kmsconf.toml:2:10: `server` `127.0.0.1:99999` is not `host[:port]` (a DNS name or IP address, IPv6 as `[addr]:port`)",
            "kmsconf.toml:3:10: zone `_vlmcs._tcp.corp.example` is written as the record name: write the zone itself (`corp.example`); kmsconf adds `_vlmcs._tcp`",
            "kmsconf.toml:3:38: zone `bad_zone-.example` is not a valid DNS name: labels of letters, digits and `-`, at most 63 characters each, separated by `.`",
            "kmsconf.toml:3:74: zone `lab.example` is listed twice",
            "kmsconf.toml:4:7: `ttl` = -1 is out of range: DNS takes 0 to 2147483647 seconds",
            "kmsconf.toml:5:41: the TSIG secret of key `kmsconf-key` (a literal in the config) is malformed: a TSIG secret is base64 text, as `tsig-keygen` prints it",
            "kmsconf.toml:5:41: warning: the TSIG secret is written in the config; use `{ env = \"VAR\" }` or `{ file = \"path\" }` so it stays out of Git",
        ]
    );
    assert!(
        !e.contains("not base64!"),
        "the secret is never echoed: {e}"
    );

    // a `[dns]` table with errors of its own is still declared: published hosts get no second,
    // false error saying there is no `[dns]` table, and the name `dns` stays reserved
    for table in [
        "[dns]\nserver = \"127.0.0.1:99999\"\nzones = [\"corp.example\"]\ninsecure_updates = true\n",
        "[dns]\nserver = \"127.0.0.1:15353\"\nzones = [\"corp.example\"]\nttl = \"1h\"\ninsecure_updates = true\n",
    ] {
        let e = validate(
            &format!("{table}[hosts.kms01]\ntarget = \"lab:a.json\"\naddress = \"kms01.corp.example\"\n[hosts.kms01.dns]\n[hosts.dns]\ntarget = \"lab:b.json\"\n"),
            1,
        );
        assert!(!e.contains("there is no `[dns]` table"), "{e}");
        assert!(e.contains("host name `dns` is reserved"), "{e}");
        let errors = e
            .lines()
            .filter(|l| l.starts_with("kmsconf.toml:") && !l.contains("warning"));
        assert_eq!(errors.count(), 2, "{e}");
    }
}

#[test]
fn validate_checks_published_hosts_and_refuses_unsigned_updates_unless_asked() {
    let e = validate(
        r#"[dns]
server = "ns1.corp.example"
zones = ["corp.example"]

[hosts.dns]
target = "lab:a.json"

[hosts.kms01]
target = "lab:b.json"

[hosts.kms01.dns]
priority = 70000

[hosts.kms02]
target = "lab:c.json"
address = "10.0.0.2"
dns = {}

[hosts.kms03]
target = "lab:d.json"
address = "KMS04.corp.example."
dns = { weight = -1 }

[hosts.kms04]
target = "lab:e.json"
address = "kms04.corp.example"
dns = {}
"#,
        1,
    );
    // the first line of each diagnostic; its source excerpt follows it
    let lines: Vec<&str> = e
        .lines()
        .filter(|l| l.starts_with("kmsconf.toml:"))
        .collect();
    assert_eq!(
        lines,
        [
            "kmsconf.toml:1:2: `[dns]` has no `tsig` key, and updates are only sent TSIG-signed: add `tsig = { name = \"KEY\", algorithm = \"hmac-sha256\", secret = { env = \"VAR\" } }` (the key `tsig-keygen` prints), or set `insecure_updates = true` to send them unsigned",
            "kmsconf.toml:5:8: host name `dns` is reserved for the DNS server while `[dns]` is declared; rename the host",
            "kmsconf.toml:11:1: host `kms01` is published in DNS but has no `address`: the SRV record needs the host's DNS name as its target",
            "kmsconf.toml:12:12: `priority` = 70000 is out of range: SRV records take 0 to 65535",
            "kmsconf.toml:16:11: host `kms02` is published in DNS, so its `address` must be a DNS name (an SRV target cannot be an IP address), not `10.0.0.2`",
            "kmsconf.toml:22:18: `weight` = -1 is out of range: SRV records take 0 to 65535",
            "kmsconf.toml:26:11: hosts `kms03` and `kms04` are both published with the address `kms04.corp.example`: each SRV record needs its own target",
        ]
    );

    let w = validate(
        "[dns]\nserver = \"[::1]:5353\"\nzones = [\"corp.example\"]\ninsecure_updates = true\n[hosts.kms01]\ntarget = \"lab:a.json\"\naddress = \"kms01.corp.example\"\ndns = {}\nservice = { dns_publishing = true }\n",
        0,
    );
    assert!(w.contains("kmsconf.toml:8:7: warning: host `kms01` is published by kmsconf and publishes itself too (`dns_publishing = true`)"), "{w}");
    assert!(w.contains("kmsconf.toml:4:20: warning: `insecure_updates = true`: DNS updates are sent without TSIG"), "{w}");

    let w = validate(
        "[dns]\nserver = \"ns1.corp.example\"\nzones = [\"corp.example\"]\ninsecure_updates = true\n[hosts.kms01]\ntarget = \"lab:a.json\"\naddress = \"KMS01\"\ndns = {}\n",
        0,
    );
    assert!(w.contains("kmsconf.toml:7:11: warning: host `kms01` is published with the one-label address `kms01`: an SRV target is an absolute name"), "{w}");

    let e = validate(
        "[hosts.kms01]\ntarget = \"lab:a.json\"\naddress = \"kms01.corp.example\"\n[hosts.kms01.dns]\n",
        1,
    );
    assert!(e.contains("kmsconf.toml:4:1: host `kms01` is published in DNS (`[hosts.kms01.dns]`), but there is no `[dns]` table naming the server and zones"), "{e}");
}

#[test]
fn the_tsig_secret_reaches_no_output_log_or_plan_file_and_a_literal_one_cannot_be_saved() {
    let bind = Bind::start();
    let mut p = project(&bind, false);
    p.env("KMSCONF_LOG", "trace");
    let mut seen = String::new();
    for args in [
        &["validate"][..],
        &["plan", "--out", "plan.json"],
        &["plan", "--json"],
        &["apply", "plan.json"],
    ] {
        let r = p.ok(args, 0);
        seen.push_str(&r.all());
    }
    assert!(seen.contains("TRACE"), "tracing was on");
    let shown = p.ok(&["show", "plan.json"], 0);
    assert!(
        shown
            .stdout
            .contains("+ corp.example/_vlmcs._tcp/kms01.corp.example"),
        "{shown:?}"
    );
    seen.push_str(&shown.all());
    seen.push_str(&p.read("plan.json"));
    assert!(
        p.read("plan.json").contains("KMSCONF_TSIG_SECRET"),
        "the plan holds the reference"
    );
    assert!(
        !seen.contains(SECRET) && !seen.contains(&SECRET[..12]),
        "the TSIG secret leaked"
    );
    assert_eq!(bind.srv("corp.example").len(), 2);

    let literal = config(bind.port, false).replace(
        "secret = { env = \"KMSCONF_TSIG_SECRET\" }",
        &format!("secret = \"{SECRET}\""),
    );
    p.write("kmsconf.toml", &literal);
    bind.nsupdate(
        "corp.example",
        "update delete _vlmcs._tcp.corp.example. SRV",
    );
    let r = p.ok(&["plan", "--out", "plan2.json"], 1);
    assert!(
        r.stderr
            .contains("warning: the TSIG secret is written in the config"),
        "{r:?}"
    );
    assert!(r.stderr.contains("cannot save a plan that needs a secret written in the config (declared at kmsconf.toml:6:"), "{r:?}");
    assert!(!p.path("plan2.json").exists());
    assert!(!r.all().contains(SECRET));
}

#[test]
fn check_targets_reports_a_published_address_without_a_record() {
    let bind = Bind::start();
    let p = project(&bind, false);
    p.write(
        "kmsconf.toml",
        &config(bind.port, false)
            .replace(
                "exclusive = false",
                "exclusive = false\ncheck_targets = true",
            )
            .replace("dns_publishing = false\n", ""),
    );
    let all = p.ok(&["plan"], 0);
    assert!(all.stdout.contains("note: kmsconf publishes this host's SRV records, and the host publishes them itself too (DNS publishing is on): set `dns_publishing = false` under `[hosts.kms01.service]`"), "{all:?}");
    assert!(
        !all.stdout.contains("[hosts.kms02.service]"),
        "kms02 is no KMS host: {all:?}"
    );
    let r = p.ok(&["plan", "--host", "dns"], 0);
    assert!(r.stdout.contains("note: host `kms02`: its address `kms02.corp.example` has no A or AAAA record on the DNS server"), "{r:?}");
    assert!(
        !r.stdout.contains("host `kms01`: its address"),
        "kms01 has an A record: {r:?}"
    );
}

#[test]
fn a_large_rrset_is_read_over_tcp_and_query_srv_returns_it() {
    let bind = Bind::start();
    let adds: Vec<String> = (0..60)
        .map(|i| {
            format!(
                "update add _vlmcs._tcp.corp.example. 3600 SRV 20 0 1688 other{i:02}.corp.example."
            )
        })
        .collect();
    bind.nsupdate("corp.example", &adds.join("\n"));
    let p = project(&bind, false);
    let r = p.ok(&["plan", "--host", "dns"], 0);
    assert!(
        r.stdout.contains("has 60 records no host declares"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("20 0 1688 other59.corp.example."),
        "{r:?}"
    );

    let server = format!("127.0.0.1:{}", bind.port);
    let records = kmsconf_targets::dns::query_srv(&server, "corp.example.").expect("query");
    assert_eq!(records.len(), 60);
    assert_eq!(records[0].target, "other00.corp.example");
    assert_eq!(
        (records[0].priority, records[0].port, records[0].ttl),
        (20, 1688, 3600)
    );
    let e = kmsconf_targets::dns::query_srv(&server, "nope.example").expect_err("refused");
    assert!(e.to_string().contains("REFUSED"), "{e}");
}

#[test]
fn doctor_checks_the_records_in_the_dns_server() {
    let bind = Bind::start();
    let p = project(&bind, false);
    let before = p.ok(&["doctor", "--host", "dns"], 1);
    assert!(
        before
            .stdout
            .contains("_vlmcs._tcp.corp.example has no SRV record"),
        "{before:?}"
    );
    p.ok(&["apply", "--auto-approve"], 0);
    let ok = p.ok(&["doctor", "--host", "dns"], 0);
    assert_eq!(ok.stdout.matches("ok       dns-srv").count(), 4, "{ok:?}");
    bind.nsupdate(
        "corp.example",
        "update delete _vlmcs._tcp.corp.example. SRV 10 50 1688 kms02.corp.example.\nupdate add _vlmcs._tcp.corp.example. 3600 SRV 10 50 1700 kms02.corp.example.",
    );
    let drift = p.ok(&["doctor", "--host", "dns"], 1);
    assert!(
        drift.stdout.contains("_vlmcs._tcp.corp.example sends clients to kms02.corp.example on port 1700, but the host listens on 1688"),
        "{drift:?}"
    );
}

#[test]
fn the_dns_example_converges_against_bind() {
    let bind = Bind::start();
    let mut p = Project::example("dns-published");
    let config = p
        .read("kmsconf.toml")
        .replace("127.0.0.1:15353", &format!("127.0.0.1:{}", bind.port));
    p.write("kmsconf.toml", &config);
    p.env("KMSCONF_TSIG_SECRET", SECRET)
        .env("KMS_HOST_KEY_2", WINDOWS_KEY_2);
    p.ok(&["validate"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 2);
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        bind.srv("corp.example"),
        [
            "0 100 1688 kms01.corp.example.",
            "10 100 1689 kms02.corp.example."
        ]
    );
    p.ok(&["plan", "--detailed-exitcode"], 0);
}
