//! The `[dns]` table (server, zones, TTL, TSIG key) and each host's `[hosts.NAME.dns]` table,
//! with the checks between them: a published host needs a `[dns]` and a DNS name of its own.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::secrets::{check_value, convert_secret};
use super::{is_host_name, Ctx};
use crate::config::wire::{self, At, DnsWire};
use crate::config::{
    DnsConfig, GssTsig, HostConfig, HostDnsConfig, TsigKey, DEFAULT_DNS_TTL, DNS_PLAN_HOST,
    MAX_DNS_TTL,
};
use crate::keys::TsigSecret;
use kmsconf_engine::diagnostic::Diagnostic;

/// The owner name of the SRV RRset KMS clients look up, relative to the zone.
const SRV_PREFIX: &str = "_vlmcs._tcp";

/// A host with a `[hosts.NAME.dns]` table, with the places messages point at.
pub(super) struct Published {
    pub(super) host: String,
    pub(super) table_at: usize,
    pub(super) address: Option<(String, usize)>,
}

pub(super) fn convert_host_dns(ctx: &mut Ctx, wire: &wire::HostDnsWire) -> HostDnsConfig {
    let mut field = |key: &str, value: &Option<At<i64>>| {
        let Some(v) = value else { return 0 };
        match u16::try_from(*v.get()) {
            Ok(n) => n,
            Err(_) => {
                ctx.error(
                    v.start(),
                    format!(
                        "`{key}` = {} is out of range: SRV records take 0 to 65535",
                        v.get()
                    ),
                );
                0
            }
        }
    };
    HostDnsConfig {
        priority: field("priority", &wire.priority),
        weight: field("weight", &wire.weight),
    }
}

pub(super) fn convert_dns(ctx: &mut Ctx, at: usize, wire: DnsWire) -> Option<DnsConfig> {
    let server = parse_server(wire.server.get().trim());
    if server.is_none() {
        ctx.error(
            wire.server.start(),
            format!(
                "`server` `{}` is not `host[:port]` (a DNS name or IP address, IPv6 as `[addr]:port`)",
                wire.server.get()
            ),
        );
    }
    let zones = convert_zones(ctx, &wire.zones);
    let ttl = match &wire.ttl {
        None => DEFAULT_DNS_TTL,
        Some(t) => match u32::try_from(*t.get()).ok().filter(|t| *t <= MAX_DNS_TTL) {
            Some(t) => t,
            None => {
                ctx.error(
                    t.start(),
                    format!(
                        "`ttl` = {} is out of range: DNS takes 0 to {MAX_DNS_TTL} seconds",
                        t.get()
                    ),
                );
                DEFAULT_DNS_TTL
            }
        },
    };
    let tsig = wire.tsig.as_ref().map(|t| convert_tsig(ctx, t.get()));
    let gss_tsig = wire
        .gss_tsig
        .as_ref()
        .and_then(|g| convert_gss_tsig(ctx, g));
    check_signing(ctx, at, &wire);
    Some(DnsConfig {
        server: server?,
        zones,
        ttl,
        exclusive: wire.exclusive,
        tsig: tsig.flatten(),
        gss_tsig,
        check_targets: wire.check_targets,
    })
}

/// Updates are signed one way, or unsigned only when asked.
fn check_signing(ctx: &mut Ctx, at: usize, wire: &DnsWire) {
    if let (Some(_), Some(gss)) = (&wire.tsig, &wire.gss_tsig) {
        ctx.error(
            gss.start(),
            "`tsig` and `gss_tsig` exclude each other: an update is signed one way; keep `gss_tsig` for an Active Directory zone, `tsig` for BIND, Knot or PowerDNS",
        );
    }
    let signer = match (&wire.tsig, &wire.gss_tsig) {
        (Some(t), _) => Some(format!("with TSIG key `{}`", t.get().name.get())),
        (None, Some(_)) => Some("with GSS-TSIG (Kerberos)".to_string()),
        (None, None) => None,
    };
    match (signer, &wire.insecure_updates) {
        (None, Some(flag)) if *flag.get() => ctx.warn(
            flag.start(),
            "`insecure_updates = true`: DNS updates are sent without TSIG, so anyone the server accepts unsigned updates from can change these records too",
        ),
        (None, _) => ctx.error(
            at,
            "`[dns]` has no `tsig` key, and updates are only sent TSIG-signed: add `tsig = { name = \"KEY\", algorithm = \"hmac-sha256\", secret = { env = \"VAR\" } }` (the key `tsig-keygen` prints), or set `insecure_updates = true` to send them unsigned",
        ),
        (Some(signer), Some(flag)) if *flag.get() => ctx.warn(
            flag.start(),
            format!("`insecure_updates` has no effect: updates are signed {signer}"),
        ),
        _ => {}
    }
}

/// `gss_tsig`: principals of the form Kerberos takes, and a keytab that is a file.
fn convert_gss_tsig(ctx: &mut Ctx, wire: &At<wire::GssTsigWire>) -> Option<GssTsig> {
    if cfg!(windows) {
        ctx.error(
            wire.start(),
            "`gss_tsig` is not supported on Windows: kmsconf signs GSS-TSIG through MIT Kerberos (Linux), not SSPI; run kmsconf on a Linux machine with a Kerberos ticket or keytab",
        );
        return None;
    }
    if super::kerberos::STATIC_BUILD {
        ctx.error(
            wire.start(),
            super::kerberos::static_build_error("`gss_tsig`", None),
        );
        return None;
    }
    let g = wire.get();
    let server_principal = g
        .server_principal
        .as_ref()
        .and_then(|p| convert_principal(ctx, "server_principal", p, true));
    let (principal, keytab) = convert_client(ctx, g.principal.as_ref(), g.keytab.as_ref());
    Some(GssTsig {
        server_principal,
        principal,
        keytab,
    })
}

/// A Kerberos client: its principal, and a keytab that is a file and comes with the principal
/// (shared by `gss_tsig` and `[active_directory] gss`).
pub(super) fn convert_client(
    ctx: &mut Ctx,
    principal: Option<&At<String>>,
    keytab: Option<&At<wire::SecretWire>>,
) -> (
    Option<String>,
    Option<kmsconf_engine::secret::DeclaredSecret>,
) {
    let name = principal.and_then(|p| convert_principal(ctx, "principal", p, false));
    let file = keytab.and_then(|k| match k.get() {
        wire::SecretWire::File { .. } => Some(convert_secret(ctx, "the keytab", k)),
        _ => {
            ctx.error(
                k.start(),
                "`keytab` must be `{ file = \"path\" }`: Kerberos reads a keytab from a file",
            );
            None
        }
    });
    if let (Some(k), None) = (keytab, principal) {
        ctx.error(
            k.start(),
            "`keytab` needs `principal`: name the principal whose keys it holds (`principal = \"svc-kmsconf@CORP.EXAMPLE\"`)",
        );
    }
    (name, file)
}

/// A Kerberos principal: `name[/instance]@REALM` (realm optional), no blanks; a server principal
/// has its service and host (`DNS/dc1.corp.example`).
pub(super) fn convert_principal(
    ctx: &mut Ctx,
    key: &str,
    at: &At<String>,
    service: bool,
) -> Option<String> {
    let text = at.get().trim();
    let (name, realm) = text.split_once('@').unwrap_or((text, "x"));
    let valid = !name.is_empty()
        && !realm.is_empty()
        && !realm.contains('@')
        && !text.contains(char::is_whitespace)
        && (!service
            || name
                .split_once('/')
                .is_some_and(|(s, h)| !s.is_empty() && !h.is_empty()));
    if valid {
        return Some(text.to_string());
    }
    let form = if key == "service_principal" {
        // a WinRM host's
        "`SERVICE/host[@REALM]` (`HTTP/kms01.corp.example@CORP.EXAMPLE`)"
    } else if service {
        "`SERVICE/host[@REALM]` (`DNS/dc1.corp.example@CORP.EXAMPLE`)"
    } else {
        "`name[@REALM]` (`svc-kmsconf@CORP.EXAMPLE`)"
    };
    ctx.error(
        at.start(),
        format!(
            "`{key}` `{}` is not a Kerberos principal: write it as {form}",
            at.get()
        ),
    );
    None
}

/// `host[:port]`, `[v6]:port` or a bare IP address, as the `host:port` text `ToSocketAddrs` takes.
fn parse_server(text: &str) -> Option<String> {
    const DNS_PORT: u16 = 53;
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(std::net::SocketAddr::new(ip, DNS_PORT).to_string());
    }
    if let Ok(addr) = text.parse::<std::net::SocketAddr>() {
        return (addr.port() > 0).then(|| addr.to_string());
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().ok().filter(|p| *p > 0)?),
        None => (text, DNS_PORT),
    };
    is_host_name(host).then(|| format!("{}:{port}", dns_name(host)))
}

/// A DNS name as kmsconf compares and stores it: lowercase, without the trailing dot.
fn dns_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn convert_zones(ctx: &mut Ctx, zones: &At<Vec<At<String>>>) -> Vec<String> {
    if zones.get().is_empty() {
        ctx.error(zones.start(), "`zones` is empty: name at least one zone");
    }
    let mut out: Vec<String> = Vec::new();
    for zone in zones.get() {
        let name = dns_name(zone.get().trim());
        let record_name = format!("{SRV_PREFIX}.{name}");
        let problem = if name.starts_with("_vlmcs.") {
            Some(format!("zone `{}` is written as the record name: write the zone itself (`{}`); kmsconf adds `{SRV_PREFIX}`", zone.get(), name.trim_start_matches("_vlmcs._tcp.")))
        } else if !is_host_name(&name) {
            Some(format!("zone `{}` is not a valid DNS name: labels of letters, digits and `-`, at most 63 characters each, separated by `.`", zone.get()))
        } else if record_name.len() > 253 {
            Some(format!(
                "zone `{}` is too long: `{record_name}` exceeds the 253 characters of a DNS name",
                zone.get()
            ))
        } else if out.contains(&name) {
            Some(format!("zone `{name}` is listed twice"))
        } else {
            None
        };
        match problem {
            Some(m) => ctx.error(zone.start(), m),
            None => out.push(name),
        }
    }
    out
}

fn convert_tsig(ctx: &mut Ctx, wire: &wire::TsigWire) -> Option<TsigKey> {
    let name = dns_name(wire.name.get().trim());
    if !is_host_name(&name) {
        ctx.error(
            wire.name.start(),
            format!(
                "TSIG key name `{}` is not a valid DNS name",
                wire.name.get()
            ),
        );
    }
    let what = "the TSIG secret";
    let secret = convert_secret(ctx, what, &wire.secret);
    // checked now where it can be read; an unset variable is checked when it is needed
    let of_key = format!("{what} of key `{name}`");
    check_value(ctx, wire.secret.start(), &secret, &of_key, |value| {
        TsigSecret::parse(value).err().map(|m| m.to_string())
    });
    is_host_name(&name).then_some(TsigKey {
        name,
        algorithm: wire.algorithm,
        secret,
    })
}

/// Cross-checks between `[dns]` and the published hosts.
/// A retired host's `_vlmcs._tcp` records are found by its `address`: without one, kmsconf
/// cannot remove them.
pub(super) fn check_retired(
    ctx: &mut Ctx,
    dns_at: Option<usize>,
    hosts: &BTreeMap<String, HostConfig>,
) {
    if dns_at.is_none() {
        return;
    }
    for host in hosts
        .values()
        .filter(|h| h.is_retired() && h.address.is_none())
    {
        ctx.diagnostics.push(Diagnostic::warning(
            host.declared_at.clone(),
            format!("host `{}` is retired without an `address`, so kmsconf cannot find its `{SRV_PREFIX}` records in the `[dns]` zones to remove them: set `address` to the name its records point at", host.name),
        ));
    }
}

pub(super) fn check_published(
    ctx: &mut Ctx,
    dns_at: Option<usize>,
    hosts: &BTreeMap<String, HostConfig>,
    published: &[Published],
) {
    if let (Some(_), Some(host)) = (dns_at, hosts.get(DNS_PLAN_HOST)) {
        ctx.diagnostics.push(Diagnostic::error(
            host.declared_at.clone(),
            format!("host name `{DNS_PLAN_HOST}` is reserved for the DNS server while `[dns]` is declared; rename the host"),
        ));
    }
    // by name: a fleet of 100,000 published hosts is checked in one pass, not in pairs
    let mut seen: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
    for p in published {
        if dns_at.is_none() {
            ctx.error(p.table_at, format!("host `{}` is published in DNS (`[hosts.{}.dns]`), but there is no `[dns]` table naming the server and zones", p.host, p.host));
        }
        let Some((address, at)) = &p.address else {
            ctx.error(p.table_at, format!("host `{}` is published in DNS but has no `address`: the SRV record needs the host's DNS name as its target", p.host));
            continue;
        };
        if address.parse::<IpAddr>().is_ok() {
            ctx.error(*at, format!("host `{}` is published in DNS, so its `address` must be a DNS name (an SRV target cannot be an IP address), not `{address}`", p.host));
            continue;
        }
        if let Some(publishing) = hosts.get(&p.host).and_then(|h| h.service.dns_publishing()) {
            if publishing {
                ctx.warn(p.table_at, format!("host `{}` is published by kmsconf and publishes itself too (`dns_publishing = true`): both would write `{SRV_PREFIX}`; set `dns_publishing = false`", p.host));
            }
        }
        let name = dns_name(address);
        if !name.contains('.') {
            ctx.warn(*at, format!("host `{}` is published with the one-label address `{name}`: an SRV target is an absolute name, so clients look up `{name}.` itself; write the host's full DNS name (`{name}.corp.example`)", p.host));
        }
        match seen.entry(name) {
            std::collections::hash_map::Entry::Occupied(first) => {
                let (name, first) = (first.key(), first.get());
                ctx.error(*at, format!("hosts `{first}` and `{}` are both published with the address `{name}`: each SRV record needs its own target", p.host));
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(&p.host);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_servers_are_host_and_port_with_53_by_default() {
        let cases = [
            ("127.0.0.1", Some("127.0.0.1:53")),
            ("127.0.0.1:15353", Some("127.0.0.1:15353")),
            ("::1", Some("[::1]:53")),
            ("[::1]:5353", Some("[::1]:5353")),
            ("NS1.Corp.Example.", Some("ns1.corp.example:53")),
            ("ns1.corp.example:5353", Some("ns1.corp.example:5353")),
            ("ns1.corp.example:0", None),
            ("ns1.corp.example:99999", None),
            ("bad name", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_server(text).as_deref(), want, "{text:?}");
        }
    }
}
