//! Issue 22, the directory side: an LDAP server (a domain controller, or whoever holds its
//! `ldap/` key) that drips, announces a huge message, refuses with terminal escapes, sends
//! search entries without end or names its activation objects with hostile text
//! (tests/e2e/hostile/ldap.py, on 127.0.0.1, with a realm from an MIT KDC). The real binary must
//! end with exit 1 and a message naming what was wrong, within `KMSCONF_TIMEOUT` and a few
//! seconds, in bounded memory; its human output must hold no control character and no line the
//! server wrote, its markdown no live mention.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::common::*;
use crate::hostile_session::{measured, Measured};
use crate::mit_kdc::{Kdc, REALM};

const SERVICE: &str = "ldap/127.0.0.1";
const USER: &str = "alice";

/// The hostile server in `mode`, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server(kdc: &Kdc, mode: &str) -> Server {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/hostile/ldap.py");
    let mut child = Command::new(crate::winrm::python())
        .arg(script)
        .arg(mode)
        .env("KRB5_CONFIG", kdc.krb5_conf())
        .env("KRB5_KTNAME", kdc.keytab())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ldap.py");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port");
    let port = line.trim().parse().expect("a port");
    Server { child, port }
}

/// A realm with the server's key and the user's ticket, and a project whose directory is the
/// hostile server; `KMSCONF_TIMEOUT` is `timeout` seconds.
fn project(mode: &str, timeout: u64, exclusive: bool) -> (Project, Server, Kdc) {
    let kdc = Kdc::start(&[], &[SERVICE, USER]);
    let p = Project::new();
    let cache = p.path("ccache");
    kdc.kinit(&format!("{USER}@{REALM}"), &kdc.keytab(), &cache, None);
    let ldap = server(&kdc, mode);
    let mut p = p;
    p.write(
        "kmsconf.toml",
        &format!(
            "[active_directory]\nserver = \"ldap://127.0.0.1:{}\"\nexclusive = {exclusive}\n\n\
             [[active_directory.activation_objects]]\nname = \"WS CSVLK\"\n\
             host_key = {{ env = \"KMS_HOST_KEY\" }}\nvia = \"kms01\"\n\n\
             [hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\n",
            ldap.port
        ),
    );
    p.env("KMS_HOST_KEY", WINDOWS_KEY);
    p.env("KRB5_CONFIG", &kdc.krb5_conf().display().to_string());
    p.env("KRB5CCNAME", &format!("FILE:{}", cache.display()));
    p.env("KMSCONF_TIMEOUT", &timeout.to_string());
    (p, ldap, kdc)
}

/// No control character but newline, and no line of the server's own.
fn assert_shown_safely(m: &Measured) {
    let all = m.run.all();
    assert!(
        !all.chars().any(|c| c.is_control() && c != '\n'),
        "{:?}",
        m.run
    );
    assert!(
        !all.lines().any(|l| l.starts_with("kms01: 0 changes")),
        "{:?}",
        m.run
    );
}

/// A server that answers the bind a byte a second is cut at the run's deadline, not held.
#[test]
fn a_dripping_directory_is_cut_at_the_deadline() {
    let (p, _ldap, _kdc) = project("drip", 5, false);
    let m = measured(&p, &["status"]);
    assert_eq!(m.run.code, 1, "{:?}", m.run);
    assert!(m.run.all().contains("no answer within 5 s"), "{:?}", m.run);
    assert!(m.took.as_secs() < 12, "took {:?}: {:?}", m.took, m.run);
    assert!(m.peak_mib < 150, "peak {} MiB", m.peak_mib);
}

/// A BER header announcing a 2 GiB message is refused by the message cap before anything is
/// allocated, at once.
#[test]
fn a_huge_ber_length_is_refused_by_the_message_cap() {
    let (p, _ldap, _kdc) = project("huge", 30, false);
    let m = measured(&p, &["status"]);
    m.failed_within("over the 4194304-byte limit", 15, 150);
}

/// A bind refused with 2 MB of escapes and fake lines: the message is cut, and what is shown
/// of it can neither drive the terminal nor start a line.
#[test]
fn a_refusal_full_of_escapes_is_cut_and_cannot_drive_the_terminal() {
    let (p, _ldap, _kdc) = project("refuse", 30, false);
    let m = measured(&p, &["status"]);
    m.failed_within("invalidCredentials (49)", 15, 150);
    assert_shown_safely(&m);
    assert!(m.run.all().len() < 64 << 10, "{} bytes", m.run.all().len());
    let json = measured(&p, &["status", "--json"]);
    assert_eq!(json.run.code, 1, "{:?}", json.run);
    let doc = crate::schemas::valid("status", &json.run);
    assert!(doc["active_directory"]["error"].is_object(), "{doc:#}");
}

/// Search entries without end: the entry cap ends a search of small ones, the session's read
/// cap one of large ones, both in bounded memory (a 64 MiB session of 20-byte entries, each a
/// map of its attributes, would have held gigabytes).
#[test]
fn endless_search_entries_stop_at_a_cap() {
    let (p, _ldap, _kdc) = project("entries", 60, false);
    let m = measured(&p, &["status"]);
    m.failed_within("a search returned over 10000 entries (the limit)", 30, 150);
    let (p, _ldap, _kdc) = project("big-entries", 60, false);
    let m = measured(&p, &["status"]);
    m.failed_within(
        "the server sent over 16777216 bytes in one session (the limit)",
        30,
        150,
    );
}

/// Activation objects named with escapes, a fake line, a mention, a reference and a link:
/// human output escapes them on one line, markdown links and mentions nothing.
#[test]
fn hostile_object_names_are_shown_inline_and_inert() {
    let (p, _ldap, _kdc) = project("names", 30, true);
    for args in [&["status"][..], &["plan"][..], &["doctor"][..]] {
        let m = measured(&p, args);
        assert!(m.run.code <= 2, "{args:?}: {:?}", m.run);
        assert!(m.run.all().contains("owned"), "{args:?}: {:?}", m.run);
        assert_shown_safely(&m);
    }
    let md = measured(&p, &["plan", "--format", "markdown"]);
    assert!(md.run.stdout.contains("owned"), "{:?}", md.run);
    assert_shown_safely(&md);
    let prose = outside_code(&md.run.stdout);
    for live in ["@octocat", "#1", "https://evil", "](javascript", "<b>"] {
        assert!(!prose.contains(live), "{live:?} live in {prose}");
    }
}

/// `markdown` without its code spans (a backtick run to the next run of the same length) and
/// `<code>` elements: the prose GitHub links mentions, references and URLs in.
fn outside_code(markdown: &str) -> String {
    let mut out = String::new();
    let mut rest = markdown;
    loop {
        let tick = rest.find('`');
        let tag = rest.find("<code>");
        match (tick, tag) {
            (Some(t), g) if g.is_none_or(|g| t < g) => {
                out.push_str(&rest[..t]);
                let run = rest[t..].chars().take_while(|c| *c == '`').count();
                let fence = "`".repeat(run);
                // a code span ends with its paragraph, at a blank line
                let after = &rest[t + run..];
                let after = &after[..after.find("\n\n").unwrap_or(after.len())];
                let mut end = None;
                let mut from = 0;
                while let Some(i) = after[from..].find(&fence) {
                    let at = from + i;
                    let longer = after[at + run..].starts_with('`');
                    if !longer && (at == 0 || !after[..at].ends_with('`')) {
                        end = Some(at);
                        break;
                    }
                    from = at + after[at..].chars().take_while(|c| *c == '`').count();
                }
                match end {
                    Some(e) => rest = &rest[t + run + e + run..],
                    None => {
                        out.push_str(&fence);
                        rest = &rest[t + run..];
                    }
                }
            }
            (_, Some(g)) => {
                // an HTML block ends at a blank line, and with it the element
                out.push_str(&rest[..g]);
                let close = rest[g..].find("</code>").map(|e| g + e + "</code>".len());
                let blank = rest[g..].find("\n\n").map(|e| g + e);
                rest = match (close, blank) {
                    (Some(c), Some(b)) if b < c => &rest[b..],
                    (Some(c), _) => &rest[c..],
                    (None, Some(b)) => &rest[b..],
                    (None, None) => "",
                };
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// The KDC that issues the `ldap/` service ticket drips a byte a second. The ticket request is
/// made by the system's GSS-API library (MIT krb5 1.20) inside the bind, under that library's
/// own timeouts: with `KMSCONF_TIMEOUT=5` it held the run 25 s. The directory is now read in a
/// thread waited for until the deadline (and 1 s), so the run ends near `KMSCONF_TIMEOUT`.
#[test]
fn a_dripping_kdc_does_not_hold_the_bind_past_the_deadline() {
    use std::io::Write as _;
    let kdc = Kdc::start(&[], &[SERVICE, USER]);
    let p = Project::new();
    let cache = p.path("ccache");
    kdc.kinit(&format!("{USER}@{REALM}"), &kdc.keytab(), &cache, None);
    std::fs::copy(kdc.krb5_conf(), p.path("krb5.conf")).expect("krb5.conf");
    let port = kdc.port;
    drop(kdc);
    // the KDC's port now answers every connection with a byte a second
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("the KDC's port");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = stream.write_all(&[0, 0, 0x40]);
                while stream.write_all(&[0]).is_ok() {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            });
        }
    });
    // an LDAP server that takes the connection and waits for the bind
    let ldap = std::net::TcpListener::bind("127.0.0.1:0").expect("ldap");
    let ldap_port = ldap.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let held: Vec<_> = ldap.incoming().collect();
        drop(held);
    });
    let mut p = p;
    p.write(
        "kmsconf.toml",
        &format!(
            "[active_directory]\nserver = \"ldap://127.0.0.1:{ldap_port}\"\n\n\
             [[active_directory.activation_objects]]\nname = \"WS CSVLK\"\n\
             host_key = {{ env = \"KMS_HOST_KEY\" }}\nvia = \"kms01\"\n\n\
             [hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\n"
        ),
    );
    p.env("KMS_HOST_KEY", WINDOWS_KEY);
    p.env("KRB5_CONFIG", &p.path("krb5.conf").display().to_string());
    p.env("KRB5CCNAME", &format!("FILE:{}", cache.display()));
    p.env("KMSCONF_TIMEOUT", "5");
    let m = measured(&p, &["status"]);
    m.failed_within("no answer within 5 s from the Kerberos KDC", 12, 150);
    assert!(
        m.run.stdout.contains("directory active_directory"),
        "{:?}",
        m.run
    );
}
