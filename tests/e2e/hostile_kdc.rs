//! Issue 22, the KDC side: the Kerberos requests MIT's GSS-API library makes for kmsconf (the
//! `DNS/` ticket of GSS-TSIG, WinRM's `HTTP/` ticket, the credentials of a keytab) go to a KDC
//! that drips a byte a second. The library waits about 25 s for such a KDC whatever kmsconf's
//! deadline is; kmsconf gives the request up at its deadline and says what waited. The realm is
//! real (a Samba AD DC, an MIT KDC) until the ticket-granting ticket is in a cache; then
//! krb5.conf points the realm at the dripping server.

use crate::gss::Dc;
use crate::hostile_session::measured;
use crate::mit_kdc::{dripping_kdc, krb5_conf_with_kdc, REALM};
use crate::winrm_ticket::{realm, ticket_table};

/// GSS-TSIG: the DNS server (Samba) answers, the KDC asked for the `DNS/` ticket drips. The
/// first zone's update fails naming the KDC within the 5 s of a DNS exchange, not MIT's 25 s;
/// the second zone's is not tried (it would wait as long again); nothing is changed.
#[test]
fn a_dripping_kdc_fails_the_gss_tsig_update_at_the_deadline() {
    let dc = Dc::start();
    let admin = dc.kinit("Administrator", Dc::admin_password(), None);
    let mut p = dc.project("{}", &[("kms01", 100)], false, &admin);
    let two_zones = p.read("kmsconf.toml").replace(
        "zones = [\"corp.example\"]",
        "zones = [\"corp.example\", \"_msdcs.corp.example\"]",
    );
    p.write("kmsconf.toml", &two_zones);
    krb5_conf_with_kdc(&dc.krb5_conf(), dripping_kdc(), &p.path("krb5.conf"));
    p.env("KRB5_CONFIG", &p.path("krb5.conf").display().to_string());
    p.env("KMSCONF_TIMEOUT", "5");
    let m = measured(&p, &["apply", "--auto-approve"]);
    eprintln!("GSS-TSIG apply ended in {:?}", m.took);
    m.failed_within(
        "no answer within 5 s from the Kerberos KDC for a ticket to `DNS/dc1.corp.example` (GSS-TSIG)",
        12,
        150,
    );
    assert!(
        m.run.all().contains("DNS server `127.0.0.2:"),
        "the DNS step is named: {:?}",
        m.run
    );
    let all = m.run.all();
    assert_eq!(
        all.matches("no answer within 5 s from the Kerberos KDC")
            .count(),
        1,
        "one zone waited: {:?}",
        m.run
    );
    assert!(
        all.contains("not sent: the Kerberos KDC gave no GSS-TSIG ticket in time for zone `"),
        "the other zone was not tried: {:?}",
        m.run
    );
    assert!(dc.srv().is_empty(), "nothing was published: {:?}", dc.srv());
    assert!(
        dc.dig("_vlmcs._tcp._msdcs.corp.example", "SRV").is_empty(),
        "nothing was published in the second zone"
    );
}

/// WinRM with a ticket from the cache: the `HTTP/` ticket request drips; with a keytab and no
/// cache, the credentials' own request (the AS exchange) drips first. Each `plan` and `status`
/// ends at `KMSCONF_TIMEOUT` (the connect timeout of 15 s, cut to it) with the host named, the
/// KDC said to be what did not answer, and no request reaching the host.
#[test]
fn a_dripping_kdc_fails_a_winrm_ticket_logon_at_the_deadline() {
    let mut p = crate::winrm::project(&ticket_table("", ""));
    let r = realm(&p);
    p.unset("WINRM_PASSWORD");
    let cache = p.path("krb5cc");
    r.kdc
        .kinit(&format!("alice@{REALM}"), &r.keytab, &cache, None);
    krb5_conf_with_kdc(&r.kdc.krb5_conf(), dripping_kdc(), &p.path("krb5.conf"));
    p.env("KRB5_CONFIG", &p.path("krb5.conf").display().to_string());
    p.env("KMSCONF_TIMEOUT", "5");
    let keytab = format!(
        "auth = \"kerberos\"\nprincipal = \"alice@{REALM}\"\nkeytab = {{ file = \"{}\" }}",
        r.keytab.display()
    );
    for (winrm, ccache) in [
        ("auth = \"kerberos\"".to_string(), cache.clone()),
        (String::new(), cache.clone()),
        (keytab, p.path("none")),
    ] {
        p.write("kmsconf.toml", &ticket_table(&r.url, &winrm));
        p.env("KRB5CCNAME", &format!("FILE:{}", ccache.display()));
        for command in ["plan", "status"] {
            let m = measured(&p, &[command]);
            eprintln!("WinRM {winrm:?} {command} ended in {:?}", m.took);
            m.failed_within(
                "host `kms0`: no answer within 5 s from the Kerberos KDC for a ticket to `HTTP/localhost` for ",
                12,
                150,
            );
            assert!(
                m.run
                    .all()
                    .contains(&format!("(Kerberos ticket) at localhost:{}", r.host.port)),
                "{winrm:?} {command}: {:?}",
                m.run
            );
        }
    }
    assert_eq!(r.host.count("authentications"), 0, "{}", r.host.stats());
    assert!(!p.path("none").exists(), "the default cache was written");
}
