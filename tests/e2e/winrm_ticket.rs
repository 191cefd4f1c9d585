//! `winrm://` with no password anywhere: `auth = "kerberos"` (and `negotiate`) from a ticket in
//! a private credential cache (`kinit` into `KRB5CCNAME`) or from a keytab, through MIT GSS-API,
//! against Debian's MIT KDC and the test endpoint accepting with its `HTTP/localhost` keytab.
//! The endpoint counts each authentication by mechanism: all Kerberos. An expired ticket, a
//! service principal the KDC does not know and a missing cache each fail with their own words.

use crate::common::*;
use crate::mit_kdc::{Kdc, REALM};
use crate::winrm::{host_table, once_per_host, project, Host, PASSWORD};

/// A host table logging on without a password: `winrm` lines, no `password`.
pub(crate) fn ticket_table(url: &str, winrm: &str) -> String {
    host_table("kms0", url, winrm).replace("password = { env = \"WINRM_PASSWORD\" }\n", "")
}

pub(crate) struct Realm {
    pub kdc: Kdc,
    pub host: Host,
    /// alice's keys, for `kinit -k` and the keytab-only run.
    pub keytab: std::path::PathBuf,
    pub url: String,
}

pub(crate) fn realm(p: &Project) -> Realm {
    let kdc = Kdc::start(&[("alice", PASSWORD)], &["HTTP/localhost"]);
    let keytab = p.path("alice.keytab");
    kdc.export_keytab("alice", &keytab);
    let host = Host::start_with(
        &["--keytab", &kdc.keytab().display().to_string()],
        &[("KRB5_CONFIG", &kdc.krb5_conf())],
    );
    let url = format!("winrm://alice@localhost:{}", host.port);
    Realm {
        kdc,
        host,
        keytab,
        url,
    }
}

fn kerberos_only(h: &Host, n: u64) {
    assert_eq!(
        h.stats()["authentications_by_protocol"],
        serde_json::json!({ "kerberos": n }),
        "Kerberos, never NTLM: {}",
        h.stats()
    );
}

#[test]
fn kerberos_from_the_credential_cache_with_no_password_anywhere() {
    let mut p = project(&ticket_table("", ""));
    let r = realm(&p);
    p.write("kmsconf.toml", &ticket_table(&r.url, "auth = \"kerberos\""));
    p.unset("WINRM_PASSWORD");
    p.env("KRB5_CONFIG", &r.kdc.krb5_conf().display().to_string());
    let cache = p.path("krb5cc");
    r.kdc
        .kinit(&format!("alice@{REALM}"), &r.keytab, &cache, None);
    p.env("KRB5CCNAME", &format!("FILE:{}", cache.display()));
    let hosts = [&r.host];
    once_per_host(&hosts, &p, &["plan", "--detailed-exitcode"], 2);
    let applied = once_per_host(&hosts, &p, &["apply", "--auto-approve"], 0);
    assert!(
        applied
            .stdout
            .contains("installed key *****-*****-*****-*****-6789B"),
        "{applied:?}"
    );
    once_per_host(&hosts, &p, &["plan", "--detailed-exitcode"], 0);
    once_per_host(&hosts, &p, &["status"], 0);
    let before = r.host.count("authentications");
    let doctor = p.run(&["doctor"]);
    assert!(r.host.count("authentications") > before, "{doctor:?}");
    assert!(!doctor.all().contains(PASSWORD), "{doctor:?}");
    let n = r.host.count("authentications");
    kerberos_only(&r.host, n);

    // `negotiate`, the default, takes the ticket too
    p.write("kmsconf.toml", &ticket_table(&r.url, ""));
    once_per_host(&hosts, &p, &["plan", "--detailed-exitcode"], 0);
    kerberos_only(&r.host, n + 1);
    r.host.wait_for_deleted();
}

#[test]
fn a_keytab_alone_logs_on() {
    let mut p = project(&ticket_table("", ""));
    let r = realm(&p);
    let winrm = format!(
        "auth = \"kerberos\"\nprincipal = \"alice@{REALM}\"\nkeytab = {{ file = \"alice.keytab\" }}"
    );
    p.write("kmsconf.toml", &ticket_table(&r.url, &winrm));
    p.unset("WINRM_PASSWORD");
    p.env("KRB5_CONFIG", &r.kdc.krb5_conf().display().to_string());
    // no cache at all: the keytab's credentials go into a cache of kmsconf's own
    p.env("KRB5CCNAME", &format!("FILE:{}", p.path("none").display()));
    once_per_host(&[&r.host], &p, &["apply", "--auto-approve"], 0);
    kerberos_only(&r.host, 1);
    assert!(!p.path("none").exists(), "the default cache was written");
    r.host.wait_for_deleted();
}

#[test]
fn an_expired_ticket_an_unknown_service_and_no_cache_are_each_told() {
    let mut p = project(&ticket_table("", ""));
    let r = realm(&p);
    p.unset("WINRM_PASSWORD");
    p.env("KRB5_CONFIG", &r.kdc.krb5_conf().display().to_string());
    p.write("kmsconf.toml", &ticket_table(&r.url, "auth = \"kerberos\""));

    p.env(
        "KRB5CCNAME",
        &format!("FILE:{}", p.path("missing").display()),
    );
    let missing = p.ok(&["plan"], 1);
    assert!(
        missing.all().contains(&format!(
            "the credential cache's principal (Kerberos ticket) at localhost:{}: no Kerberos credentials in cache `FILE:",
            r.host.port
        ))
            && missing
                .all()
                .contains("`kinit` one, or set `keytab` and `principal`"),
        "{missing:?}"
    );

    let cache = p.path("krb5cc");
    r.kdc
        .kinit(&format!("alice@{REALM}"), &r.keytab, &cache, None);
    p.env("KRB5CCNAME", &format!("FILE:{}", cache.display()));
    p.write(
        "kmsconf.toml",
        &ticket_table(
            &r.url,
            "auth = \"kerberos\"\nservice_principal = \"HTTP/elsewhere.kmsconf.test\"",
        ),
    );
    let unknown = p.ok(&["plan"], 1);
    assert!(
        unknown
            .all()
            .contains("the KDC does not know the service principal `HTTP/elsewhere.kmsconf.test`"),
        "{unknown:?}"
    );

    let short = p.path("short");
    r.kdc
        .kinit(&format!("alice@{REALM}"), &r.keytab, &short, Some("2s"));
    std::thread::sleep(std::time::Duration::from_secs(3));
    p.env("KRB5CCNAME", &format!("FILE:{}", short.display()));
    p.write("kmsconf.toml", &ticket_table(&r.url, "auth = \"kerberos\""));
    let expired = p.ok(&["plan"], 1);
    assert!(expired.all().contains("has expired"), "{expired:?}");
    for run in [&missing, &unknown, &expired] {
        assert!(!run.all().contains(PASSWORD), "{run:?}");
    }
    assert_eq!(
        r.host.count("shells_created"),
        0,
        "no shell without authentication"
    );
}

/// A keytab kmsconf cannot log on with says which file and which principal, and no token
/// reaches the host: a file that is not a keytab, a keytab without the principal's key (another
/// realm's principal), and a keytab that is not there (named with the host's name in the
/// config).
#[test]
fn a_keytab_without_the_principals_key_is_told() {
    let mut p = project(&ticket_table("", ""));
    let r = realm(&p);
    p.unset("WINRM_PASSWORD");
    p.env("KRB5_CONFIG", &r.kdc.krb5_conf().display().to_string());
    p.env("KRB5CCNAME", &format!("FILE:{}", p.path("none").display()));
    p.write("bogus.keytab", "not a keytab\n");
    let with = |principal: &str, keytab: &str| {
        ticket_table(
            &r.url,
            &format!("auth = \"kerberos\"\nprincipal = \"{principal}\"\nkeytab = {{ file = \"{keytab}\" }}"),
        )
    };
    for (principal, keytab) in [
        (format!("alice@{REALM}"), "bogus.keytab"),
        ("alice@OTHER.EXAMPLE".to_string(), "alice.keytab"),
    ] {
        p.write("kmsconf.toml", &with(&principal, keytab));
        let run = p.ok(&["plan"], 1);
        assert!(
            run.all().contains(&format!(
                "`{principal}` (Kerberos ticket) at localhost:{}: keytab `{}` holds no key of `{principal}` that Kerberos can use",
                r.host.port,
                p.path(keytab).display()
            )),
            "{run:?}"
        );
    }
    p.write(
        "kmsconf.toml",
        &with(&format!("alice@{REALM}"), "missing.keytab"),
    );
    let missing = p.ok(&["plan"], 1);
    assert!(
        missing
            .all()
            .contains("host `kms0`: authentication refused: the keytab `")
            && missing.all().contains("missing.keytab` cannot be read"),
        "{missing:?}"
    );
    assert_eq!(r.host.count("authentications"), 0, "{}", r.host.stats());
    assert_eq!(r.host.stats()["requests_by_action"], serde_json::json!({}));
    assert!(!p.path("none").exists(), "the default cache was written");
}
