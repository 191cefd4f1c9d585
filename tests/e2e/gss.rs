//! GSS-TSIG: the `_vlmcs._tcp` SRV records converged in a real Samba AD DC (Debian's `samba`,
//! `samba-ad-dc`, `samba-ad-provision`) with Kerberos tickets from `kinit` (`krb5-user`).
//!
//! The domain `CORP.EXAMPLE` is provisioned once per test run (about 5-10 s) with the users
//! `bob` and `svc-kmsconf` (and a keytab of the latter); each test copies it and starts its own
//! `samba` on 127.0.0.2 with free high ports (under a second), stopped by its PID. A private
//! krb5.conf (`KRB5_CONFIG`) points at that KDC and each test has its own credential caches.
//! Without those programs these tests fail: `scripts/test.sh` installs them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::*;

const REALM: &str = "CORP.EXAMPLE";
/// Test-only passwords of the throwaway domain.
const ADMIN_PASSWORD: &str = "Adm1n-Passw0rd!";
const BOB_PASSWORD: &str = "B0b-Passw0rd!";
const SVC_PASSWORD: &str = "Svc-Passw0rd!";
/// The address every test DC listens on (ports differ).
const ADDRESS: &str = "127.0.0.2";

fn program(name: &str, package: &str) -> PathBuf {
    crate::dns::require(name, package)
}

fn free_port() -> u16 {
    crate::dns::free_port_on(ADDRESS)
}

/// The ports of one DC: DNS, Kerberos, kpasswd.
struct Ports([u16; 3]);

impl Ports {
    fn free() -> Self {
        Self([free_port(), free_port(), free_port()])
    }

    fn options(&self) -> [(&'static str, u16); 3] {
        [
            ("dns port", self.0[0]),
            ("krb5 port", self.0[1]),
            ("kpasswd port", self.0[2]),
        ]
    }
}

/// The provisioned domain every test copies, and the ports written in its smb.conf.
struct Template {
    dir: PathBuf,
    ports: Ports,
}

fn run(command: &mut Command, what: &str) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Provisions the domain once per test run, under the target directory (this run's own
/// directory; earlier runs' are removed).
fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for old in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let name = old.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("samba-dc-")
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
        let dir = root.join(format!("samba-dc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run")).expect("template dir");
        let ports = Ports::free();
        let d = dir.display();
        let mut provision = Command::new(program("samba-tool", "samba"));
        provision
            .args([
                "domain",
                "provision",
                "--realm",
                REALM,
                "--domain=CORP",
                "--server-role=dc",
                "--dns-backend=SAMBA_INTERNAL",
                "--use-rfc2307",
                "--host-name=dc1",
                "--host-ip",
                ADDRESS,
            ])
            .arg(format!("--adminpass={ADMIN_PASSWORD}"))
            .arg(format!("--targetdir={d}"))
            .arg(format!("--option=interfaces={ADDRESS}/8"))
            .arg("--option=bind interfaces only=yes")
            .arg("--option=server services=kdc, dns")
            .arg(format!("--option=pid directory={d}/run"))
            .arg(format!("--option=log file={d}/samba.log"));
        for (option, port) in ports.options() {
            provision.arg(format!("--option={option}={port}"));
        }
        run(&mut provision, "samba-tool domain provision");
        let conf = dir.join("etc/smb.conf");
        for (user, password) in [("bob", BOB_PASSWORD), ("svc-kmsconf", SVC_PASSWORD)] {
            run(
                Command::new(program("samba-tool", "samba"))
                    .args(["user", "create", user, password, "-s"])
                    .arg(&conf),
                "samba-tool user create",
            );
        }
        run(
            Command::new(program("samba-tool", "samba"))
                .args(["domain", "exportkeytab"])
                .arg(dir.join("svc-kmsconf.keytab"))
                .arg(format!("--principal=svc-kmsconf@{REALM}"))
                .arg("-s")
                .arg(&conf),
            "samba-tool domain exportkeytab",
        );
        Template { dir, ports }
    })
}

/// A running Samba AD DC on a copy of the template, stopped by its PID when dropped.
pub struct Dc {
    child: Child,
    ports: Ports,
    dir: tempfile::TempDir,
}

impl Drop for Dc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dc {
    pub fn start() -> Dc {
        Self::start_with(|_, conf| conf)
    }

    /// A DC whose copy `prepare` changes first (given the copy's directory and its smb.conf
    /// text, it returns the smb.conf to write): the Active Directory-based activation tests add
    /// the LDAP service and seed objects.
    pub fn start_with(prepare: impl FnOnce(&Path, String) -> String) -> Dc {
        let template = template();
        let dir = tempfile::tempdir().expect("tmp");
        run(
            Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", template.dir.display()))
                .arg(dir.path()),
            "copy the provisioned domain",
        );
        let ports = Ports::free();
        let conf_path = dir.path().join("etc/smb.conf");
        let mut conf = std::fs::read_to_string(&conf_path)
            .expect("smb.conf")
            .replace(
                &template.dir.display().to_string(),
                &dir.path().display().to_string(),
            );
        for ((option, old), (_, new)) in template.ports.options().into_iter().zip(ports.options()) {
            conf = conf.replace(&format!("{option} = {old}"), &format!("{option} = {new}"));
        }
        let conf = prepare(dir.path(), conf);
        std::fs::write(&conf_path, conf).expect("smb.conf");
        std::fs::write(
            dir.path().join("krb5.conf"),
            format!(
                "[libdefaults]\n default_realm = {REALM}\n dns_lookup_kdc = false\n dns_lookup_realm = false\n rdns = false\n dns_canonicalize_hostname = false\n\n[realms]\n {REALM} = {{\n  kdc = {ADDRESS}:{}\n }}\n",
                ports.0[1]
            ),
        )
        .expect("krb5.conf");
        let log = std::fs::File::create(dir.path().join("samba.out")).expect("log");
        let child = Command::new(program("samba", "samba"))
            .args(["-i", "-M", "single", "-s"])
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start samba");
        let mut dc = Dc { child, ports, dir };
        dc.wait_until_answering();
        dc
    }

    pub fn admin_password() -> &'static str {
        ADMIN_PASSWORD
    }

    pub fn bob_password() -> &'static str {
        BOB_PASSWORD
    }

    pub fn address() -> &'static str {
        ADDRESS
    }

    fn wait_until_answering(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("samba exited ({status}) before answering:\n{}", self.log());
            }
            let kdc = std::net::TcpStream::connect((ADDRESS, self.ports.0[1])).is_ok();
            if kdc && !self.dig("corp.example", "SOA").is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("samba did not answer within 30 seconds:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("samba.out")).unwrap_or_default()
    }

    pub fn server(&self) -> String {
        format!("{ADDRESS}:{}", self.ports.0[0])
    }

    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.path().join("krb5.conf")
    }

    /// The DC's directory database, for `ldbadd` while it runs.
    pub fn sam(&self) -> PathBuf {
        self.dir.path().join("private/sam.ldb")
    }

    pub fn keytab(&self) -> PathBuf {
        self.dir.path().join("svc-kmsconf.keytab")
    }

    pub fn dig(&self, name: &str, kind: &str) -> Vec<String> {
        crate::dns::dig(ADDRESS, self.ports.0[0], name, kind)
    }

    pub fn srv(&self) -> Vec<String> {
        self.dig("_vlmcs._tcp.corp.example", "SRV")
    }

    /// A credential cache of this test holding a ticket of `user`; returns its name.
    pub fn kinit(&self, user: &str, password: &str, lifetime: Option<&str>) -> String {
        let cache = format!("FILE:{}/cc-{user}", self.dir.path().display());
        let mut child = Command::new(program("kinit", "krb5-user"))
            .args(lifetime.map(|l| ["-l", l]).into_iter().flatten())
            .arg(format!("{user}@{REALM}"))
            .env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5CCNAME", &cache)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kinit");
        use std::io::Write;
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes());
        let out = child.wait_with_output().expect("kinit");
        assert!(
            out.status.success(),
            "kinit {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cache
    }

    /// Changes the records behind kmsconf's back, as `cache`'s principal: `nsupdate -g`. It
    /// exits 2 ("tsig verify failure") on Samba's answer although the update applied, so the
    /// caller checks the records with `dig` instead.
    pub fn nsupdate(&self, cache: &str, commands: &str) {
        self.nsupdate_zone(cache, "corp.example", commands);
    }

    /// [`Dc::nsupdate`] in `zone` (`_msdcs.corp.example`, where the DC locator's records are).
    pub fn nsupdate_zone(&self, cache: &str, zone: &str, commands: &str) {
        let script = format!(
            "server {ADDRESS} {}\nzone {zone}\n{commands}\nsend\n",
            self.ports.0[0]
        );
        let mut child = Command::new(program("nsupdate", "bind9-dnsutils"))
            .arg("-g")
            .env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5CCNAME", cache)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nsupdate");
        use std::io::Write;
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes());
        let _ = child.wait_with_output().expect("nsupdate");
    }

    /// A project publishing `hosts` (name, weight) in `corp.example` through this DC, signed
    /// with `gss_tsig` (its inline table), as `cache`'s principal.
    pub fn project(
        &self,
        gss_tsig: &str,
        hosts: &[(&str, u16)],
        exclusive: bool,
        cache: &str,
    ) -> Project {
        let mut config = format!(
            "[dns]\nserver = \"{}\"\nzones = [\"corp.example\"]\nexclusive = {exclusive}\ngss_tsig = {gss_tsig}\n",
            self.server()
        );
        for (host, weight) in hosts {
            config.push_str(&format!(
                "\n[hosts.{host}]\ntarget = \"lab:lab/{host}.json\"\naddress = \"{host}.corp.example\"\n\n[hosts.{host}.dns]\nweight = {weight}\n"
            ));
        }
        let mut p = Project::new();
        p.write("kmsconf.toml", &config);
        p.env("KRB5_CONFIG", &self.krb5_conf().display().to_string());
        p.env("KRB5CCNAME", cache);
        p
    }
}

fn failed(run: &Run) -> String {
    run.stdout
        .lines()
        .find(|l| l.trim_start().starts_with("failed"))
        .unwrap_or_else(|| panic!("no failed change: {run:?}"))
        .to_string()
}

#[test]
fn records_converge_with_an_administrator_ticket_and_a_second_plan_has_no_changes() {
    let dc = Dc::start();
    let admin = dc.kinit("Administrator", ADMIN_PASSWORD, None);
    let mut p = dc.project("{}", &[("kms01", 100), ("kms02", 50)], false, &admin);
    p.ok(&["validate"], 0);
    p.env("KMSCONF_LOG", "kmsconf_targets=debug");
    let applied = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        applied.stderr.contains("convention=Samba"),
        "the answer verified Samba's way, and debug says so: {applied:?}"
    );
    assert!(
        applied.stdout.contains("GSS-TSIG-signed update"),
        "{applied:?}"
    );
    assert_eq!(
        dc.srv(),
        [
            "0 100 1688 kms01.corp.example.",
            "0 50 1688 kms02.corp.example."
        ]
    );
    let again = p.ok(&["plan", "--detailed-exitcode"], 0);
    assert!(again.stdout.contains("No changes"), "{again:?}");
    // doctor reads the records unsigned, without Kerberos
    p.unset("KRB5CCNAME");
    let doctor = p.ok(&["doctor", "--host", "dns"], 0);
    assert_eq!(
        doctor.stdout.matches("ok       dns-srv").count(),
        2,
        "{doctor:?}"
    );
}

#[test]
fn a_record_added_between_plan_and_apply_fails_the_prerequisite_and_exclusive_then_deletes_it() {
    let dc = Dc::start();
    let admin = dc.kinit("Administrator", ADMIN_PASSWORD, None);
    // kms01 has changes of its own and answers slowly: the DNS update, planned against an empty
    // RRset, waits for it, and meanwhile someone else adds a record
    let p = dc.project("{}", &[("kms01", 100)], true, &admin);
    let config = p.read("kmsconf.toml")
        + "\n[hosts.kms01.products.windows]\nhost_key = { env = \"KMS_HOST_KEY\" }\n";
    p.write("kmsconf.toml", &config);
    p.ok(&["lab", "latency", "lab/kms01.json", "1500"], 0);
    let mut apply = p
        .command(&["apply", "--auto-approve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("apply");
    let progress = apply.stderr.take().expect("stderr");
    let mut seen = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(progress)) {
        let line = line.expect("progress");
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("kms01: applying") {
            break; // `dns` has been read and planned, and waits for kms01
        }
    }
    assert!(seen.contains("kms01: applying"), "{seen}");
    dc.nsupdate(
        &admin,
        "update add _vlmcs._tcp.corp.example. 3600 SRV 0 0 1688 old.corp.example.",
    );
    let out = apply.wait_with_output().expect("apply");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("prerequisite failed") && stdout.contains("YXRRSET (7)"),
        "{stdout}"
    );
    assert_eq!(
        dc.srv(),
        ["0 0 1688 old.corp.example."],
        "nothing of kmsconf's applied"
    );

    p.ok(&["lab", "latency", "lab/kms01.json", "0"], 0);
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        dc.srv(),
        ["0 100 1688 kms01.corp.example."],
        "`exclusive` deleted the record no host declares"
    );
}

#[test]
fn no_destroyed_or_expired_ticket_and_a_wrong_server_principal_fail_clearly_and_change_nothing() {
    let dc = Dc::start();
    let cache = format!("FILE:{}/cc-none", dc.dir.path().display());
    let p = dc.project("{}", &[("kms01", 100)], false, &cache);
    let none = p.ok(&["apply", "--auto-approve"], 1);
    assert!(
        failed(&none).contains(&format!("DNS server `{}`, zone `corp.example`: no Kerberos credentials in cache `{cache}`: run kinit or set `keytab`", dc.server())),
        "{none:?}"
    );

    let admin = dc.kinit("Administrator", ADMIN_PASSWORD, None);
    run(
        Command::new(program("kdestroy", "krb5-user"))
            .env("KRB5_CONFIG", dc.krb5_conf())
            .env("KRB5CCNAME", &admin),
        "kdestroy",
    );
    let p = dc.project("{}", &[("kms01", 100)], false, &admin);
    let destroyed = p.ok(&["apply", "--auto-approve"], 1);
    assert!(
        failed(&destroyed).contains("no Kerberos credentials in cache"),
        "{destroyed:?}"
    );

    let short = dc.kinit("Administrator", ADMIN_PASSWORD, Some("1s"));
    std::thread::sleep(Duration::from_millis(2100));
    let p = dc.project("{}", &[("kms01", 100)], false, &short);
    let expired = p.ok(&["apply", "--auto-approve"], 1);
    assert!(
        failed(&expired).contains(&format!(
            "zone `corp.example`: the Kerberos ticket in cache `{short}` has expired"
        )),
        "{expired:?}"
    );

    let admin = dc.kinit("Administrator", ADMIN_PASSWORD, None);
    let p = dc.project(
        "{ server_principal = \"DNS/nope.corp.example\" }",
        &[("kms01", 100)],
        false,
        &admin,
    );
    let wrong = p.ok(&["apply", "--auto-approve"], 1);
    assert!(
        failed(&wrong).contains("zone `corp.example`: as `Administrator@CORP.EXAMPLE` with `DNS/nope.corp.example` (GSS-TSIG): the KDC does not know server principal `DNS/nope.corp.example`"),
        "{wrong:?}"
    );
    assert!(dc.srv().is_empty(), "nothing changed: {:?}", dc.srv());
}

#[test]
fn a_non_administrator_cannot_change_the_administrators_record() {
    let dc = Dc::start();
    let admin = dc.kinit("Administrator", ADMIN_PASSWORD, None);
    dc.project("{}", &[("kms01", 100)], false, &admin)
        .ok(&["apply", "--auto-approve"], 0);
    let bob = dc.kinit("bob", BOB_PASSWORD, None);
    let p = dc.project("{}", &[("kms01", 10)], false, &bob);
    let refused = p.ok(&["apply", "--auto-approve"], 1);
    let line = failed(&refused);
    assert!(
        line.contains("as `bob@CORP.EXAMPLE`")
            && line.contains("SERVFAIL (2)")
            && line.contains("may not change"),
        "Samba answers SERVFAIL where Windows answers REFUSED: {refused:?}"
    );
    assert_eq!(dc.srv(), ["0 100 1688 kms01.corp.example."]);
}

#[test]
fn a_keytab_signs_updates_and_stays_out_of_every_output() {
    let dc = Dc::start();
    let keytab = dc.keytab();
    let secret = std::fs::read(&keytab).expect("keytab");
    let cache = format!("FILE:{}/cc-unused", dc.dir.path().display());
    let gss = format!(
        "{{ principal = \"svc-kmsconf@{REALM}\", keytab = {{ file = \"{}\" }} }}",
        keytab.display()
    );
    let mut p = dc.project(&gss, &[("kms01", 100)], false, &cache);
    p.env("KMSCONF_LOG", "trace");
    let runs = [
        p.ok(&["validate"], 0),
        p.ok(&["plan", "--json", "--out", "plan.json"], 0),
        p.ok(&["apply", "plan.json"], 0),
        p.ok(&["plan"], 0),
    ];
    assert_eq!(dc.srv(), ["0 100 1688 kms01.corp.example."]);
    let mut all = runs
        .iter()
        .map(Run::all)
        .collect::<Vec<_>>()
        .concat()
        .into_bytes();
    all.extend(std::fs::read(p.path("plan.json")).expect("plan file"));
    let text = String::from_utf8_lossy(&all).to_lowercase();
    // the keytab's keys, raw, in hex or in base64: any 16 bytes of it in a row would show them
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&secret);
    for (i, window) in secret.windows(16).enumerate().step_by(8) {
        let hex: String = window.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            !all.windows(16).any(|w| w == window),
            "keytab bytes at {i} leaked"
        );
        assert!(!text.contains(&hex), "keytab bytes at {i} leaked in hex");
    }
    assert!(
        !String::from_utf8_lossy(&all).contains(&b64[..24]),
        "the keytab leaked in base64"
    );
    assert!(
        !Path::new(&cache.trim_start_matches("FILE:")).exists(),
        "the keytab's credentials stay in a cache of the process's own"
    );
}

#[test]
fn validate_points_at_gss_tsig_beside_tsig_and_at_a_keytab_it_cannot_use() {
    let p = Project::new();
    p.write(
        "kmsconf.toml",
        "[dns]\nserver = \"dc1.corp.example\"\nzones = [\"corp.example\"]\ntsig = { name = \"k\", secret = { env = \"S\" } }\ngss_tsig = { keytab = { env = \"KT\" }, server_principal = \"dc1\" }\n",
    );
    let out = p.ok(&["validate"], 1);
    for expected in [
        "kmsconf.toml:5:12: `tsig` and `gss_tsig` exclude each other",
        "kmsconf.toml:5:23: `keytab` must be `{ file = \"path\" }`",
        "kmsconf.toml:5:23: `keytab` needs `principal`",
        "kmsconf.toml:5:58: `server_principal` `dc1` is not a Kerberos principal: write it as `SERVICE/host[@REALM]`",
    ] {
        assert!(out.stderr.contains(expected), "{expected}\n{out:?}");
    }
}
