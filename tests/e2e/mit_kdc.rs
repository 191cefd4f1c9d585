//! Debian's MIT Kerberos KDC (`krb5kdc` and `kdb5_util` from `krb5-kdc`, `kadmin.local` from
//! `krb5-admin-server`) on 127.0.0.1 with a free port, for the WinRM Kerberos test.
//!
//! Each KDC gets a new realm database and its own krb5.conf and kdc.conf (`KRB5_CONFIG`,
//! `KRB5_KDC_PROFILE`) in a temp dir, which takes well under a second, and is stopped by its PID.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REALM: &str = "KMSCONF.TEST";
const ADDRESS: &str = "127.0.0.1";
/// The database's master key: a throwaway realm's.
const MASTER_PASSWORD: &str = "kmsconf-test-master";
const KEYTAB: &str = "services.keytab";

pub struct Kdc {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Kdc {
    /// A KDC whose realm holds `users` (name, password) and `services` (random keys, written to
    /// [`Kdc::keytab`]).
    pub fn start(users: &[(&str, &str)], services: &[&str]) -> Kdc {
        let dir = tempfile::tempdir().expect("tmp");
        let port = crate::dns::free_port_on(ADDRESS);
        let d = dir.path().display();
        // every principal requires pre-authentication, as in Active Directory: sspi asks for a
        // ticket without it first and takes only PREAUTH_REQUIRED as the answer
        let kdc_conf = format!(
            "[kdcdefaults]\n kdc_listen = {ADDRESS}:{port}\n kdc_tcp_listen = {ADDRESS}:{port}\n\n\
             [realms]\n {REALM} = {{\n  database_name = {d}/principal\n  key_stash_file = {d}/stash\n  \
             default_principal_flags = +preauth\n }}\n\n[logging]\n kdc = FILE:{d}/kdc.log\n"
        );
        // TCP only: kmsconf reaches a KDC over TCP, and so does every test client here
        let krb5_conf = format!(
            "[libdefaults]\n default_realm = {REALM}\n dns_lookup_kdc = false\n dns_lookup_realm = false\n \
             rdns = false\n dns_canonicalize_hostname = false\n udp_preference_limit = 1\n\n\
             [realms]\n {REALM} = {{\n  kdc = {ADDRESS}:{port}\n }}\n"
        );
        std::fs::write(dir.path().join("kdc.conf"), kdc_conf).expect("kdc.conf");
        std::fs::write(dir.path().join("krb5.conf"), krb5_conf).expect("krb5.conf");
        let setup = Setup(dir.path());
        setup.run(
            "kdb5_util",
            "krb5-kdc",
            &["create", "-s", "-r", REALM, "-P", MASTER_PASSWORD],
        );
        for (user, password) in users {
            setup.kadmin(&format!("addprinc -pw {password} {user}"));
        }
        let keytab = dir.path().join(KEYTAB);
        for service in services {
            setup.kadmin(&format!("addprinc -randkey {service}"));
            setup.kadmin(&format!("ktadd -k {} {service}", keytab.display()));
        }
        let child = setup
            .command("krb5kdc", "krb5-kdc")
            .args(["-n", "-r", REALM])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start krb5kdc");
        let mut kdc = Kdc { child, port, dir };
        kdc.wait_until_answering();
        kdc
    }

    /// The realm's krb5.conf, for `KRB5_CONFIG`.
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.path().join("krb5.conf")
    }

    /// The services' keys.
    pub fn keytab(&self) -> PathBuf {
        self.dir.path().join(KEYTAB)
    }

    /// Writes `principal`'s current keys (its password's, unchanged) to the keytab `path`.
    pub fn export_keytab(&self, principal: &str, path: &Path) {
        Setup(self.dir.path()).kadmin(&format!(
            "ktadd -k {} -norandkey {principal}",
            path.display()
        ));
    }

    /// `kinit` of `principal` from `keytab` into the credential cache `cache` (`FILE:` path),
    /// for `lifetime` (a kinit duration, `5s`) or the realm's default.
    pub fn kinit(&self, principal: &str, keytab: &Path, cache: &Path, lifetime: Option<&str>) {
        let mut command = Command::new(crate::dns::require("kinit", "krb5-user"));
        command
            .env("KRB5_CONFIG", self.krb5_conf())
            .arg("-k")
            .arg("-t")
            .arg(keytab)
            .arg("-c")
            .arg(format!("FILE:{}", cache.display()));
        if let Some(lifetime) = lifetime {
            command.args(["-l", lifetime]);
        }
        let out = command.arg(principal).output().expect("kinit");
        assert!(
            out.status.success(),
            "kinit {principal}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kdc.log")).unwrap_or_default()
    }

    fn wait_until_answering(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "krb5kdc exited ({status}) before answering:\n{}",
                    self.log()
                );
            }
            if std::net::TcpStream::connect((ADDRESS, self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("krb5kdc did not answer within 20 seconds:\n{}", self.log());
    }
}

/// The programs that make a realm, run on its configuration.
struct Setup<'a>(&'a Path);

impl Setup<'_> {
    fn command(&self, program: &str, package: &str) -> Command {
        let mut command = Command::new(crate::dns::require(program, package));
        command
            .env("KRB5_CONFIG", self.0.join("krb5.conf"))
            .env("KRB5_KDC_PROFILE", self.0.join("kdc.conf"))
            .stdin(Stdio::null());
        command
    }

    fn run(&self, program: &str, package: &str, args: &[&str]) {
        let out = self
            .command(program, package)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {} failed:\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn kadmin(&self, query: &str) {
        self.run(
            "kadmin.local",
            "krb5-admin-server",
            &["-r", REALM, "-q", query],
        );
    }
}

/// A server on a free port of 127.0.0.1 that takes every connection and answers it a byte a
/// second, without end: a KDC that drips. Returns its port; it lives as long as the test.
pub fn dripping_kdc() -> u16 {
    use std::io::Write as _;
    let listener = std::net::TcpListener::bind((ADDRESS, 0)).expect("a port");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                // a length prefix announcing a reply of 64 bytes, then one byte a second
                let _ = stream.write_all(&[0, 0, 0, 0x40]);
                while stream.write_all(&[0]).is_ok() {
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        }
    });
    port
}

/// `krb5_conf` with every `kdc = ...` line pointing at 127.0.0.1:`port` instead, over TCP only,
/// written to `to`: the realm's tickets already in a cache stay good, and the next request
/// goes to that port.
pub fn krb5_conf_with_kdc(krb5_conf: &Path, port: u16, to: &Path) {
    let text = std::fs::read_to_string(krb5_conf).expect("krb5.conf");
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("kdc =") {
            out.push_str(&format!("  kdc = {ADDRESS}:{port}\n"));
        } else if line.trim_start().starts_with("udp_preference_limit") {
            continue;
        } else {
            out.push_str(line);
            out.push('\n');
            if line.trim() == "[libdefaults]" {
                out.push_str(" udp_preference_limit = 1\n");
            }
        }
    }
    std::fs::write(to, out).expect("krb5.conf");
}
