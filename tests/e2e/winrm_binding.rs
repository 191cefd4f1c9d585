//! Channel binding over HTTPS (RFC 5929 `tls-server-end-point`), as a WinRM service with
//! `CbtHardeningLevel = Strict` requires: the test endpoint, started with the bindings of a
//! certificate, refuses NTLM that carries none (shown with pyspnego's own client) and NTLM or
//! Kerberos whose bindings are another certificate's, and accepts kmsconf's, with a password
//! (NTLM, and Negotiate) and with a Kerberos ticket.

use std::path::Path;
use std::process::Command;

use crate::mit_kdc::{Kdc, REALM};
use crate::winrm::{host_table, once_per_host, project, python, script, Host, PASSWORD};

fn certificates(dir: &Path) {
    for extra in [None, Some("--wrong-name")] {
        let made = Command::new(python())
            .arg(script())
            .args(["make-cert", "--dir"])
            .arg(dir)
            .args(extra)
            .status()
            .expect("make-cert");
        assert!(made.success());
    }
}

/// pyspnego's NTLM initiator without channel bindings against `port`: the HTTP status of its
/// last leg (what pywinrm without `requests-ntlm`'s bindings would get).
fn unbound_ntlm_status(port: u16, ca: &Path) -> String {
    let code = r#"
import base64, http.client, ssl, sys, spnego
tls = ssl.create_default_context(cafile=sys.argv[2])
conn = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=tls)
client = spnego.client("LAB\\alice", sys.argv[3], protocol="ntlm")
token = client.step()
while True:
    conn.request("POST", "/wsman", b"", {"Authorization": "Negotiate " + base64.b64encode(token).decode()})
    r = conn.getresponse(); r.read()
    offered = [v.split(" ", 1)[1] for k, v in r.getheaders() if k.lower() == "www-authenticate" and " " in v]
    if r.status != 401 or not offered or client.complete:
        print(r.status); break
    token = client.step(base64.b64decode(offered[0]))
"#;
    let out = Command::new(python())
        .args(["-c", code, &port.to_string()])
        .arg(ca)
        .arg(PASSWORD)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The endpoint over HTTPS with the certificate in `certs`, refusing authentication without that
/// certificate's channel bindings.
fn strict_host(certs: &std::path::Path) -> Host {
    let cert = |n: &str| certs.join(n).display().to_string();
    Host::start(&[
        "--https",
        &cert("cert.pem"),
        &cert("key.pem"),
        "--channel-binding",
        &cert("cert.pem"),
    ])
}

#[test]
fn ntlm_and_negotiate_over_https_carry_the_certificates_bindings() {
    let certs = tempfile::tempdir().expect("dir");
    certificates(certs.path());
    let cert = |n: &str| certs.path().join(n).display().to_string();
    let strict = strict_host(certs.path());
    assert_eq!(
        unbound_ntlm_status(strict.port, &certs.path().join("ca.pem")),
        "401"
    );
    let ca = format!("ca_file = \"{}\"", cert("ca.pem"));
    let url = format!("winrm+https://LAB\\\\alice@127.0.0.1:{}", strict.port);
    for auth in ["ntlm", "negotiate"] {
        let p = project(&host_table(
            "kms0",
            &url,
            &format!("{ca}\nauth = \"{auth}\""),
        ));
        once_per_host(&[&strict], &p, &["plan", "--detailed-exitcode"], 2);
    }
    assert_eq!(strict.stats()["authentications_by_protocol"]["ntlm"], 2);

    // an endpoint expecting another certificate's bindings refuses kmsconf's
    let other = Host::start(&[
        "--https",
        &cert("cert.pem"),
        &cert("key.pem"),
        "--channel-binding",
        &cert("wrong-cert.pem"),
    ]);
    let url = format!("winrm+https://LAB\\\\alice@127.0.0.1:{}", other.port);
    let p = project(&host_table("kms0", &url, &format!("{ca}\nauth = \"ntlm\"")));
    let refused = p.ok(&["plan"], 1);
    assert!(
        refused.all().contains("was refused (HTTP 401)"),
        "{refused:?}"
    );
    assert_eq!(other.count("auth_failures"), 1, "{}", other.stats());
}

#[test]
fn kerberos_over_https_carries_the_certificates_bindings() {
    let certs = tempfile::tempdir().expect("dir");
    certificates(certs.path());
    let cert = |n: &str| certs.path().join(n).display().to_string();
    let kdc = Kdc::start(&[("alice", PASSWORD)], &["HTTP/localhost"]);
    let mut p = project("");
    let keytab = p.path("alice.keytab");
    kdc.export_keytab("alice", &keytab);
    let cache = p.path("krb5cc");
    kdc.kinit(&format!("alice@{REALM}"), &keytab, &cache, None);
    p.unset("WINRM_PASSWORD");
    p.env("KRB5_CONFIG", &kdc.krb5_conf().display().to_string());
    p.env("KRB5CCNAME", &format!("FILE:{}", cache.display()));
    let ca = format!("ca_file = \"{}\"\nauth = \"kerberos\"", cert("ca.pem"));
    for (bound_to, code) in [("cert.pem", 2), ("wrong-cert.pem", 1)] {
        let h = Host::start_with(
            &[
                "--https",
                &cert("cert.pem"),
                &cert("key.pem"),
                "--channel-binding",
                &cert(bound_to),
                "--keytab",
                &kdc.keytab().display().to_string(),
            ],
            &[("KRB5_CONFIG", &kdc.krb5_conf())],
        );
        let url = format!("winrm+https://alice@localhost:{}", h.port);
        let table =
            host_table("kms0", &url, &ca).replace("password = { env = \"WINRM_PASSWORD\" }\n", "");
        p.write("kmsconf.toml", &table);
        let run = p.ok(&["plan", "--detailed-exitcode"], code);
        if code == 1 {
            // MIT's acceptor checks bindings the initiator sent: kmsconf sent this certificate's
            assert!(run.all().contains("was refused (HTTP 401)"), "{run:?}");
        } else {
            assert_eq!(
                h.stats()["authentications_by_protocol"],
                serde_json::json!({ "kerberos": 1 })
            );
        }
    }
}

/// A server certificate signed with ECDSA-SHA384 binds with SHA-384 (RFC 5929 4.1): the endpoint
/// computes the bindings with Python's `cryptography` from the certificate it is given, and
/// accepts kmsconf's, which reads the signature algorithm from the DER itself.
#[test]
fn a_certificate_signed_with_sha384_binds_with_sha384() {
    let certs = tempfile::tempdir().expect("dir");
    let made = Command::new(python())
        .arg(script())
        .args(["make-cert", "--hash", "sha384", "--dir"])
        .arg(certs.path())
        .status()
        .expect("make-cert");
    assert!(made.success());
    let cert = |n: &str| certs.path().join(n).display().to_string();
    let strict = strict_host(certs.path());
    let url = format!("winrm+https://LAB\\\\alice@127.0.0.1:{}", strict.port);
    let ca = format!("ca_file = \"{}\"\nauth = \"ntlm\"", cert("ca.pem"));
    let p = project(&host_table("kms0", &url, &ca));
    once_per_host(&[&strict], &p, &["plan", "--detailed-exitcode"], 2);
    assert_eq!(strict.count("auth_failures"), 0, "{}", strict.stats());
}
