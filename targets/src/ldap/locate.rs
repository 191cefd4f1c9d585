//! Finding a domain controller when `[active_directory]` names no `server`: the domain is the
//! realm of the bind identity, lowercased; its DCs are the targets of the
//! `_ldap._tcp.dc._msdcs.<domain>` SRV records (MS-ADTS 6.3.6.1), asked of `[dns] server` when
//! the config declares one, else of the first `nameserver` in `/etc/resolv.conf`. The targets'
//! addresses come from the same DNS server, all by the run's deadline. The caller tries them
//! in the order given here.

use std::net::IpAddr;
use std::path::Path;
use std::time::Instant;

use kmsconf_model::adba::{dc_srv_name, DcLocation};

use crate::dns::lookup::{self, ServiceRecord};
use crate::error::ldap::LocateError;

/// The most domain controllers one run tries: enough for a site's DCs, few enough that a domain
/// whose DCs are all down fails within the run's deadline with a readable error.
pub const MOST_TARGETS: usize = 10;
/// Where the system's DNS servers are configured (resolv.conf(5)).
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// One domain controller to try: its name (its Kerberos service principal is `ldap/<host>`),
/// port, and the addresses DNS gave for it (empty: the system resolves the name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub host: String,
    pub port: u16,
    pub addresses: Vec<IpAddr>,
}

impl Candidate {
    /// `host:port`.
    pub fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The domain controllers found, in the order to try them, and the lookup that found them.
#[derive(Debug, Clone)]
pub struct Located {
    pub location: DcLocation,
    pub candidates: Vec<Candidate>,
}

/// The DNS domain of `principal` (`svc@CORP.EXAMPLE` → `corp.example`).
pub fn domain_of(principal: &str) -> Result<String, LocateError> {
    match principal.rsplit_once('@') {
        Some((_, realm)) if !realm.is_empty() => Ok(realm.to_ascii_lowercase()),
        _ => Err(LocateError::NoRealm),
    }
}

/// The DNS server to ask: `dns` (`[dns] server`) when declared, else the system's first.
pub fn dns_server(dns: Option<&str>, name: &str) -> Result<String, LocateError> {
    if let Some(server) = dns {
        return Ok(server.to_string());
    }
    let path = Path::new(RESOLV_CONF);
    let text = std::fs::read_to_string(path).map_err(|source| LocateError::NoResolver {
        name: name.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    Ok(nameserver(&text))
}

/// The first `nameserver` of a resolv.conf as `address:53`; without one, the name server on
/// the local machine, as resolv.conf(5) says.
fn nameserver(text: &str) -> String {
    let first = text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next())
            .flatten()
    });
    match first {
        Some(address) if address.contains(':') => format!("[{address}]:53"),
        Some(address) => format!("{address}:53"),
        None => "127.0.0.1:53".to_string(),
    }
}

/// The order RFC 2782 asks for, made deterministic: priority, lowest first; within a priority,
/// weight, highest first (where RFC 2782 draws by weighted chance), then name and port. A lone
/// `.` target (no service) and repeats are dropped; at most [`MOST_TARGETS`] are kept.
pub fn order(mut records: Vec<ServiceRecord>) -> Vec<ServiceRecord> {
    records.retain(|r| !r.target.is_empty());
    records.sort_by(|a, b| {
        (a.priority, std::cmp::Reverse(a.weight), &a.target, a.port).cmp(&(
            b.priority,
            std::cmp::Reverse(b.weight),
            &b.target,
            b.port,
        ))
    });
    records.dedup_by(|a, b| a.target == b.target && a.port == b.port);
    records.truncate(MOST_TARGETS);
    records
}

/// The domain controllers of `principal`'s domain, from DNS server `dns` (or the system's),
/// with every lookup answered by `deadline`.
pub fn locate(
    principal: &str,
    dns: Option<&str>,
    deadline: Instant,
) -> Result<Located, LocateError> {
    let name = dc_srv_name(&domain_of(principal)?);
    let server = dns_server(dns, &name)?;
    let dns_error = |source| LocateError::Dns {
        dns: server.clone(),
        name: name.clone(),
        source: Box::new(source),
    };
    let records = lookup::service_records(&server, &name, deadline).map_err(dns_error)?;
    let offered = !records.is_empty();
    let records = order(records);
    if records.is_empty() {
        let (name, dns) = (name.clone(), server.clone());
        return Err(if offered {
            LocateError::NoService { name, dns }
        } else {
            LocateError::NoRecord { name, dns }
        });
    }
    let names: Vec<String> = records.iter().map(|r| r.target.clone()).collect();
    let addresses = lookup::addresses(&server, &names, deadline).map_err(dns_error)?;
    let candidates = records
        .into_iter()
        .zip(addresses)
        .map(|(r, addresses)| Candidate {
            host: r.target,
            port: r.port,
            addresses,
        })
        .collect();
    tracing::debug!(%name, dns = %server, ?candidates, "domain controllers from DNS");
    Ok(Located {
        location: DcLocation {
            srv_name: name,
            dns_server: server,
        },
        candidates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ldap::{Attempt, LdapError};

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> ServiceRecord {
        ServiceRecord {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    #[test]
    fn targets_go_by_priority_then_heaviest_weight_then_name() {
        let ordered = order(vec![
            srv(10, 100, 389, "dc9.corp.example"),
            srv(0, 50, 389, "dc3.corp.example"),
            srv(0, 100, 389, "dc2.corp.example"),
            srv(0, 100, 389, "dc1.corp.example"),
            srv(0, 100, 389, "dc1.corp.example"),
        ]);
        let names: Vec<&str> = ordered.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(
            names,
            [
                "dc1.corp.example",
                "dc2.corp.example",
                "dc3.corp.example",
                "dc9.corp.example"
            ]
        );
    }

    #[test]
    fn no_service_and_too_many_targets_are_cut() {
        assert!(order(vec![srv(0, 0, 0, "")]).is_empty());
        let many = (0..25)
            .map(|i| srv(0, 0, 389, &format!("dc{i:02}.z")))
            .collect();
        let kept = order(many);
        assert_eq!(kept.len(), MOST_TARGETS);
        assert_eq!(kept[0].target, "dc00.z");
    }

    #[test]
    fn the_domain_is_the_lowercase_realm_and_the_resolver_the_first_nameserver() {
        assert_eq!(
            domain_of("svc-kmsconf@CORP.EXAMPLE").as_deref().ok(),
            Some("corp.example")
        );
        assert_eq!(
            domain_of("user@sub.corp@CORP.EXAMPLE").as_deref().ok(),
            Some("corp.example")
        );
        assert!(matches!(domain_of("nobody"), Err(LocateError::NoRealm)));
        let conf =
            "# by hand\nsearch corp.example\nnameserver 10.0.0.53 # ours\nnameserver 10.0.0.54\n";
        assert_eq!(nameserver(conf), "10.0.0.53:53");
        assert_eq!(nameserver("nameserver ::1\n"), "[::1]:53");
        assert_eq!(nameserver("options ndots:2\n"), "127.0.0.1:53");
        assert_eq!(
            dns_server(Some("127.0.0.2:5353"), "x").ok().as_deref(),
            Some("127.0.0.2:5353")
        );
    }

    /// A DNS server that takes the queries and never answers: the lookup ends at the run's
    /// deadline (3 s, before the client's own 5 s of UDP tries), naming the server and the SRV
    /// name. The bound is loose: the machine running the tests may be loaded.
    #[test]
    fn a_dns_server_that_never_answers_fails_by_the_deadline_naming_it_and_the_srv_name() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let server = silent.local_addr().expect("address").to_string();
        let within = std::time::Duration::from_secs(3);
        let started = Instant::now();
        let e = locate("svc@CORP.EXAMPLE", Some(&server), started + within).expect_err("no answer");
        let took = started.elapsed();
        assert!(
            took < within + std::time::Duration::from_secs(5),
            "{took:?}"
        );
        assert!(took >= within, "ended before the deadline: {took:?}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("DNS server `{server}`, looking up `_ldap._tcp.dc._msdcs.corp.example`: it did not answer before the run's deadline (")),
            "{text}"
        );
        // how many of the 1 s, 2 s, 2 s tries went out depends on the machine's load
        assert!(text.ends_with(&format!(" over UDP to {server})")), "{text}");
        assert!(e.is_dns());
        drop(silent);
    }

    #[test]
    fn errors_name_the_srv_name_the_dns_server_and_each_dc_tried() {
        let none = LocateError::NoRecord {
            name: "_ldap._tcp.dc._msdcs.corp.example".into(),
            dns: "127.0.0.1:5353".into(),
        };
        assert_eq!(
            none.to_string(),
            "no `_ldap._tcp.dc._msdcs.corp.example` SRV record on 127.0.0.1:5353: set `server = \"ldap://…\"`"
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let failed = LocateError::NoneBound {
            name: "_ldap._tcp.dc._msdcs.corp.example".into(),
            dns: "127.0.0.1:5353".into(),
            tried: vec![
                Attempt {
                    server: "dc1.corp.example:389".into(),
                    error: LdapError::Connect(refused),
                },
                Attempt {
                    server: "dc2.corp.example:389".into(),
                    error: LdapError::BindRefused {
                        code: 49,
                        message: "bad ticket".into(),
                    },
                },
            ],
            untried: 1,
        };
        let text = failed.to_string();
        assert!(
            text.starts_with("no domain controller of `_ldap._tcp.dc._msdcs.corp.example` (DNS server `127.0.0.1:5353`) connected and bound: `dc1.corp.example:389`: cannot connect: "),
            "{text}"
        );
        assert!(
            text.ends_with("`dc2.corp.example:389`: the SASL GSSAPI bind was refused (invalidCredentials (49)): bad ticket; 1 more not tried: the run's time ran out"),
            "{text}"
        );
        assert!(!failed.is_dns() && none.is_dns());
    }
}
