//! From TOML text to validated [`HostConfig`]s, collecting every diagnostic on the way.
//!
//! Each host table is deserialized on its own, so an error in one host does not hide the errors
//! in the next; cross-field and cross-host checks run on what did deserialize.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::wire::{self, At, DnsWire, HostWire, ProductWire, PublishDomainWire, SecretWire};
use super::{
    DnsConfig, FirewallConfig, HostConfig, HostDnsConfig, ProductConfig, PublishDomain,
    ServiceConfig, TargetSpec, TsigKey, DEFAULT_DNS_TTL, DNS_PLAN_HOST, INTERVAL_RANGE,
    MAX_DNS_TTL,
};
use crate::keys::{ConfirmationId, ProductKey, TsigSecret};
use kmsconf_engine::diagnostic::{Diagnostic, Location};
use kmsconf_engine::secret::{DeclaredSecret, SecretSource};

/// The owner name of the SRV RRset KMS clients look up, relative to the zone.
const SRV_PREFIX: &str = "_vlmcs._tcp";

/// Firewall remote-address keywords Windows accepts besides addresses, subnets and ranges.
const ADDRESS_KEYWORDS: &[&str] = &[
    "Any",
    "LocalSubnet",
    "DNS",
    "DHCP",
    "WINS",
    "DefaultGateway",
    "Internet",
    "Intranet",
    "IntranetRemoteAccess",
    "PlayToDevice",
];

struct Ctx<'a> {
    path: &'a Path,
    dir: &'a Path,
    source: &'a str,
    diagnostics: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn at(&self, offset: usize) -> Location {
        Location::at(self.path, self.source, offset)
    }
    fn error(&mut self, offset: usize, message: impl Into<String>) {
        let d = Diagnostic::error(self.at(offset), message);
        self.diagnostics.push(d);
    }
    fn warn(&mut self, offset: usize, message: impl Into<String>) {
        let d = Diagnostic::warning(self.at(offset), message);
        self.diagnostics.push(d);
    }
}

/// What validation produced: the hosts, and the `[dns]` table when there is one.
type Validated = (BTreeMap<String, HostConfig>, Option<DnsConfig>);

pub(super) fn validate(
    path: &Path,
    dir: &Path,
    source: &str,
) -> (Option<Validated>, Vec<Diagnostic>) {
    let mut ctx = Ctx {
        path,
        dir,
        source,
        diagnostics: Vec::new(),
    };
    let root = match DeTable::parse(source) {
        Ok(root) => root.into_inner(),
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let mut message = e.message().trim().to_string();
            if message == "duplicate key" {
                let key = source.get(span.clone()).unwrap_or_default();
                message = format!(
                    "duplicate key `{key}`: each host and each setting may be declared only once"
                );
            }
            ctx.error(span.start, message);
            return (None, ctx.diagnostics);
        }
    };
    let mut hosts = BTreeMap::new();
    let mut depends_spans: BTreeMap<String, Vec<(String, usize)>> = BTreeMap::new();
    let mut target_spans: BTreeMap<String, usize> = BTreeMap::new();
    let mut dns: Option<DnsConfig> = None;
    // where `[dns]` is declared, also when it does not convert: its own errors say what is wrong
    let mut dns_at: Option<usize> = None;
    let mut published: Vec<Published> = Vec::new();
    for (key, value) in root {
        if key.get_ref() == "dns" {
            let at = key.span().start;
            dns_at = Some(at);
            match DnsWire::deserialize(ValueDeserializer::from(value)) {
                Ok(wire) => dns = convert_dns(&mut ctx, at, wire),
                Err(e) => {
                    let offset = e.span().map_or(at, |s| s.start);
                    ctx.error(offset, e.message().trim().to_string());
                }
            }
            continue;
        }
        if key.get_ref() != "hosts" {
            ctx.error(
                key.span().start,
                format!("unknown key `{}`, expected `hosts` or `dns`", key.get_ref()),
            );
            continue;
        }
        let span = value.span();
        let DeValue::Table(table) = value.into_inner() else {
            ctx.error(
                span.start,
                "`hosts` must be a table of hosts: `[hosts.NAME]`",
            );
            continue;
        };
        for (name, body) in table {
            let name_at = name.span().start;
            let name = name.into_inner().into_owned();
            check_host_name(&mut ctx, &name, name_at);
            match HostWire::deserialize(ValueDeserializer::from(body)) {
                Ok(wire) => {
                    depends_spans.insert(
                        name.clone(),
                        wire.depends_on
                            .iter()
                            .map(|d| (d.get().clone(), d.start()))
                            .collect(),
                    );
                    target_spans.insert(name.clone(), wire.target.start());
                    if let Some(table) = &wire.dns {
                        published.push(Published {
                            host: name.clone(),
                            table_at: table.start(),
                            address: wire.address.as_ref().map(|a| (a.get().clone(), a.start())),
                        });
                    }
                    if let Some(host) = convert_host(&mut ctx, &name, name_at, wire) {
                        hosts.insert(name, host);
                    }
                }
                Err(e) => {
                    let offset = e.span().map_or(name_at, |s| s.start);
                    ctx.error(offset, e.message().trim().to_string());
                }
            }
        }
    }
    check_dependencies(&mut ctx, &hosts, &depends_spans);
    check_duplicate_targets(&mut ctx, &hosts, &target_spans);
    check_duplicate_names(&mut ctx, &hosts);
    check_published(&mut ctx, dns_at, &hosts, &published);
    (Some((hosts, dns)), ctx.diagnostics)
}

/// A host with a `[hosts.NAME.dns]` table, with the places messages point at.
struct Published {
    host: String,
    table_at: usize,
    address: Option<(String, usize)>,
}

fn check_host_name(ctx: &mut Ctx, name: &str, at: usize) {
    if let Err(message) = super::check_host_name(name) {
        ctx.error(at, message);
    }
}

fn convert_host(ctx: &mut Ctx, name: &str, at: usize, wire: HostWire) -> Option<HostConfig> {
    let target = parse_target(ctx, &wire.target);
    let address = wire.address.as_ref().map(|a| {
        if !is_host_name(a.get()) && a.get().parse::<IpAddr>().is_err() {
            ctx.error(
                a.start(),
                format!("`address` `{}` is not a DNS name or an IP address", a.get()),
            );
        }
        a.get().clone()
    });
    let service = wire
        .service
        .map(|s| convert_service(ctx, s))
        .unwrap_or_default();
    let firewall = wire.firewall.map(|f| convert_firewall(ctx, f));
    let dns = wire.dns.as_ref().map(|d| convert_host_dns(ctx, d.get()));
    let mut products: BTreeMap<_, _> = wire
        .products
        .into_iter()
        .map(|(id, p)| (id, convert_product(ctx, name, id, p)))
        .collect();
    if let Some(TargetSpec::Lab { .. }) = &target {
        for p in products.values_mut() {
            p.license_pack_path = p.license_pack_path.as_ref().map(|l| ctx.dir.join(l));
        }
    }
    Some(HostConfig {
        name: name.to_string(),
        target: target?,
        address,
        depends_on: wire.depends_on.iter().map(|d| d.get().clone()).collect(),
        service,
        firewall,
        products,
        dns,
        declared_at: ctx.at(at),
    })
}

fn parse_target(ctx: &mut Ctx, target: &At<String>) -> Option<TargetSpec> {
    match target_from_text(target.get(), ctx.dir) {
        Ok(spec) => Some(spec),
        Err(message) => {
            ctx.error(target.start(), message);
            None
        }
    }
}

/// Reads a target as written in a config in `dir` (or given on the command line, `dir` being
/// the current directory).
pub(super) fn target_from_text(text: &str, dir: &Path) -> Result<TargetSpec, String> {
    let text = text.trim();
    let expected = "expected `lab:PATH`, `local` or `ssh://[user@]host[:port]`";
    if let Some(path) = text.strip_prefix("lab:") {
        if path.is_empty() {
            return Err(format!("target `{text}` has no path; {expected}"));
        }
        return Ok(TargetSpec::Lab {
            path: dir.join(path),
        });
    }
    if text == "local" {
        if !cfg!(windows) {
            return Err("target `local` means this machine is the KMS host, but kmsconf is not running on Windows; use `ssh://user@host` to reach a Windows host".into());
        }
        return Ok(TargetSpec::Local);
    }
    if let Some(rest) = text.strip_prefix("ssh://") {
        // the message does not repeat the target: it would print the password
        if rest
            .rsplit_once('@')
            .is_some_and(|(user, _)| user.contains(':'))
        {
            return Err("an ssh target must not hold a password (`user:password@host`): kmsconf runs ssh in batch mode, which never sends one; use key authentication and write `ssh://user@host`".into());
        }
        return parse_ssh(rest)
            .ok_or_else(|| format!("target `{text}` is not a valid ssh target; {expected}"));
    }
    Err(format!("unknown target `{text}`; {expected}"))
}

fn parse_ssh(rest: &str) -> Option<TargetSpec> {
    // the last `@` ends the user, as for ssh itself: a domain account is `user@domain@host`
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
        Some(_) => return None,
        None => (None, rest),
    };
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let (h, after) = inner.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0)?),
            None if after.is_empty() => None,
            None => return None,
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                Some(p.parse::<u16>().ok().filter(|p| *p > 0)?),
            ),
            None => (hostport.to_string(), None),
        }
    };
    let valid = is_host_name(&host) || host.parse::<IpAddr>().is_ok();
    valid.then_some(TargetSpec::Ssh { user, host, port })
}

fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn in_range(
    ctx: &mut Ctx,
    key: &str,
    value: &At<i64>,
    min: i64,
    max: i64,
    unit: &str,
) -> Option<i64> {
    let v = *value.get();
    if v < min || v > max {
        ctx.error(
            value.start(),
            format!("`{key}` = {v} is out of range: Windows accepts {min} to {max}{unit}"),
        );
        return None;
    }
    Some(v)
}

fn convert_service(ctx: &mut Ctx, s: wire::ServiceWire) -> ServiceConfig {
    let (lo, hi) = (
        i64::from(*INTERVAL_RANGE.start()),
        i64::from(*INTERVAL_RANGE.end()),
    );
    let minutes = " minutes (30 days)";
    let port = s
        .port
        .as_ref()
        .and_then(|p| in_range(ctx, "port", p, 1, 65535, ""));
    let ai = s
        .activation_interval
        .as_ref()
        .and_then(|v| in_range(ctx, "activation_interval", v, lo, hi, minutes));
    let ri = s
        .renewal_interval
        .as_ref()
        .and_then(|v| in_range(ctx, "renewal_interval", v, lo, hi, minutes));
    let publish_domains = s
        .publish_domains
        .as_ref()
        .map(|list| convert_domains(ctx, list));
    if let (Some(false), Some(list)) = (s.dns_publishing, &s.publish_domains) {
        ctx.warn(
            list.start(),
            "`publish_domains` has no effect while `dns_publishing = false`",
        );
    }
    ServiceConfig {
        port: port.and_then(|p| u16::try_from(p).ok()),
        dns_publishing: s.dns_publishing,
        publish_domains,
        low_priority: s.low_priority,
        activation_interval: ai.and_then(|v| u32::try_from(v).ok()),
        renewal_interval: ri.and_then(|v| u32::try_from(v).ok()),
        host_caching: s.host_caching,
    }
}

fn convert_domains(ctx: &mut Ctx, list: &At<Vec<At<PublishDomainWire>>>) -> Vec<PublishDomain> {
    let mut out: Vec<PublishDomain> = Vec::new();
    for entry in list.get() {
        let at = entry.start();
        let (domain, priority, weight) = match entry.get() {
            PublishDomainWire::Domain(d) => (d.clone(), 0, 0),
            PublishDomainWire::Detailed(d) => (d.domain.clone(), d.priority, d.weight),
        };
        let mut ok = true;
        if !is_host_name(&domain) {
            ctx.error(
                at,
                format!("publish domain `{domain}` is not a valid DNS domain name"),
            );
            ok = false;
        }
        for (what, v) in [("priority", priority), ("weight", weight)] {
            if !(0..=65535).contains(&v) {
                ctx.error(
                    at,
                    format!("{what} {v} of publish domain `{domain}` is out of range 0 to 65535"),
                );
                ok = false;
            }
        }
        if out.iter().any(|d| d.domain.eq_ignore_ascii_case(&domain)) {
            ctx.error(at, format!("publish domain `{domain}` is listed twice"));
            ok = false;
        }
        if ok {
            out.push(PublishDomain {
                domain,
                priority: u16::try_from(priority).unwrap_or_default(),
                weight: u16::try_from(weight).unwrap_or_default(),
            });
        }
    }
    out
}

fn convert_firewall(ctx: &mut Ctx, f: wire::FirewallWire) -> FirewallConfig {
    let mut groups = Vec::new();
    for g in &f.rule_groups {
        if groups.contains(g.get()) {
            ctx.error(
                g.start(),
                format!("rule group `{}` is listed twice", g.get()),
            );
        } else {
            groups.push(*g.get());
        }
    }
    let remote_addresses = f.remote_addresses.as_ref().map(|list| {
        if list.get().is_empty() {
            ctx.error(list.start(), "`remote_addresses` is empty; leave it out to allow any remote address");
        }
        if !groups.contains(&wire::RuleGroup::KeyManagementService) {
            ctx.error(
                list.start(),
                "`remote_addresses` scopes the `key-management-service` rule group, which is not in `rule_groups`",
            );
        }
        let mut canonical: Vec<String> = Vec::new();
        for a in list.get() {
            match remote_address(a.get()) {
                // Windows keeps one of each, so a repeated entry would read back as drift
                Ok(c) if canonical.contains(&c) => ctx.error(
                    a.start(),
                    format!("remote address `{}` is listed twice", a.get()),
                ),
                Ok(c) => canonical.push(c),
                Err(m) => ctx.error(a.start(), m),
            }
        }
        // discovery reads a rule open to `Any` as no scope at all
        if canonical.iter().any(|a| a == "Any") {
            Vec::new()
        } else {
            canonical
        }
    });
    FirewallConfig {
        rule_groups: groups,
        remote_addresses,
    }
}

/// Checks a remote address and returns it in the form discovery reads it back from Windows
/// (keywords in their own spelling, IPs as Rust prints them, a one-address subnet as the bare
/// address), so a scope written another way does not show as a change on every plan.
fn remote_address(text: &str) -> Result<String, String> {
    if let Some(keyword) = ADDRESS_KEYWORDS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(text))
    {
        return Ok((*keyword).to_string());
    }
    let bad = || {
        format!(
            "remote address `{text}` is not an IP address, a subnet `a.b.c.d/n`, a range `a-b` or one of {}",
            ADDRESS_KEYWORDS.join(", ")
        )
    };
    if let Some((ip, prefix)) = text.split_once('/') {
        let ip: IpAddr = ip.parse().map_err(|_| bad())?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(bad)?;
        return Ok(if prefix == max {
            ip.to_string()
        } else {
            format!("{ip}/{prefix}")
        });
    }
    if let Some((a, b)) = text.split_once('-') {
        let (a, b): (IpAddr, IpAddr) =
            (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a.is_ipv4() != b.is_ipv4() || a > b {
            return Err(format!("remote address range `{text}` must go from a lower to a higher address of one family"));
        }
        return Ok(format!("{a}-{b}"));
    }
    text.parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| bad())
}

fn convert_secret(ctx: &mut Ctx, what: &str, wire: &At<SecretWire>) -> DeclaredSecret {
    let source = match wire.get() {
        SecretWire::Env { env } => {
            // no variable can have an empty name or one with `=` or NUL: it could never be set
            if env.is_empty() {
                ctx.error(
                    wire.start(),
                    format!("{what}: the `env` variable name is empty"),
                );
            } else if env.contains(['=', '\0']) {
                ctx.error(
                    wire.start(),
                    format!(
                        "{what}: `{}` is not an environment variable name",
                        env.escape_debug()
                    ),
                );
            }
            SecretSource::Env(env.clone())
        }
        SecretWire::File { file } => {
            if file.trim().is_empty() {
                ctx.error(wire.start(), format!("{what}: the `file` path is empty"));
            }
            SecretSource::File(PathBuf::from(file)).rooted(ctx.dir)
        }
        SecretWire::Literal(value) => {
            ctx.warn(
                wire.start(),
                format!("{what} is written in the config; use `{{ env = \"VAR\" }}` or `{{ file = \"path\" }}` so it stays out of Git"),
            );
            SecretSource::Literal(kmsconf_engine::secret::Secret::new(value.clone()))
        }
    };
    DeclaredSecret {
        source,
        declared_at: ctx.at(wire.start()),
    }
}

fn convert_product(
    ctx: &mut Ctx,
    host: &str,
    id: wire::ProductId,
    p: ProductWire,
) -> ProductConfig {
    let key_what = format!("the host key of `{id}`");
    let host_key = convert_secret(ctx, &key_what, &p.host_key);
    // Check the key's form now wherever it can be read without contacting a host; a source
    // that cannot be read yet (an unset variable in a review job) is checked at plan time.
    if let Ok(secret) = host_key.source.resolve(&key_what) {
        if let Err(m) = ProductKey::parse(&secret) {
            ctx.error(
                p.host_key.start(),
                format!(
                    "{key_what} ({}) is malformed: {m}",
                    host_key.source.describe()
                ),
            );
        }
    }
    if let (Some(pack), false) = (&p.license_pack, id.is_office()) {
        ctx.error(
            pack.start(),
            format!("`{id}` has no license pack: only Office KMS host products need one"),
        );
    }
    if let Some(pack) = p
        .license_pack
        .as_ref()
        .filter(|p| p.get().trim().is_empty())
    {
        ctx.error(pack.start(), "`license_pack` is empty");
    }
    let confirmation_id = p.confirmation_id.as_ref().map(|cid| {
        let what = format!("the confirmation ID of `{id}`");
        let declared = convert_secret(ctx, &what, cid);
        if p.activation != wire::Activation::Phone {
            ctx.error(cid.start(), format!("`confirmation_id` is only used with `activation = \"phone\"` (host `{host}`, product `{id}`)"));
        }
        if let Ok(secret) = declared.source.resolve(&what) {
            if let Err(m) = ConfirmationId::parse(&secret) {
                ctx.error(cid.start(), format!("{what} ({}) is malformed: {m}", declared.source.describe()));
            }
        }
        declared
    });
    let license_pack = p.license_pack.map(|l| l.get().trim().to_string());
    ProductConfig {
        host_key,
        license_pack_path: license_pack.as_ref().map(PathBuf::from),
        license_pack,
        activation: p.activation,
        confirmation_id,
    }
}

fn convert_host_dns(ctx: &mut Ctx, wire: &wire::HostDnsWire) -> HostDnsConfig {
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

fn convert_dns(ctx: &mut Ctx, at: usize, wire: DnsWire) -> Option<DnsConfig> {
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
    match (&wire.tsig, &wire.insecure_updates) {
        (None, Some(flag)) if *flag.get() => ctx.warn(
            flag.start(),
            "`insecure_updates = true`: DNS updates are sent without TSIG, so anyone the server accepts unsigned updates from can change these records too",
        ),
        (None, _) => ctx.error(
            at,
            "`[dns]` has no `tsig` key, and updates are only sent TSIG-signed: add `tsig = { name = \"KEY\", algorithm = \"hmac-sha256\", secret = { env = \"VAR\" } }` (the key `tsig-keygen` prints), or set `insecure_updates = true` to send them unsigned",
        ),
        (Some(t), Some(flag)) if *flag.get() => ctx.warn(
            flag.start(),
            format!(
                "`insecure_updates` has no effect: updates are signed with TSIG key `{}`",
                t.get().name.get()
            ),
        ),
        _ => {}
    }
    Some(DnsConfig {
        server: server?,
        zones,
        ttl,
        exclusive: wire.exclusive,
        tsig: tsig.flatten(),
        check_targets: wire.check_targets,
    })
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
    if let Ok(value) = secret.source.resolve(what) {
        if let Err(m) = TsigSecret::parse(&value) {
            ctx.error(
                wire.secret.start(),
                format!(
                    "{what} of key `{name}` ({}) is malformed: {m}",
                    secret.source.describe()
                ),
            );
        }
    }
    is_host_name(&name).then_some(TsigKey {
        name,
        algorithm: wire.algorithm,
        secret,
    })
}

/// Cross-checks between `[dns]` and the published hosts.
fn check_published(
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
    let mut seen: Vec<(String, &str)> = Vec::new();
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
        if let Some(publishing) = hosts.get(&p.host).and_then(|h| h.service.dns_publishing) {
            if publishing {
                ctx.warn(p.table_at, format!("host `{}` is published by kmsconf and publishes itself too (`dns_publishing = true`): both would write `{SRV_PREFIX}`; set `dns_publishing = false`", p.host));
            }
        }
        let name = dns_name(address);
        if !name.contains('.') {
            ctx.warn(*at, format!("host `{}` is published with the one-label address `{name}`: an SRV target is an absolute name, so clients look up `{name}.` itself; write the host's full DNS name (`{name}.corp.example`)", p.host));
        }
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
            ctx.error(*at, format!("hosts `{first}` and `{}` are both published with the address `{name}`: each SRV record needs its own target", p.host));
        } else {
            seen.push((name, &p.host));
        }
    }
}

fn check_dependencies(
    ctx: &mut Ctx,
    hosts: &BTreeMap<String, HostConfig>,
    spans: &BTreeMap<String, Vec<(String, usize)>>,
) {
    let mut dag = kmsconf_engine::graph::Dag::new();
    for (host, deps) in spans {
        dag.add_node(host.clone());
        for (dep, at) in deps {
            if dep == host {
                ctx.error(*at, format!("host `{host}` depends on itself"));
            } else if !spans.contains_key(dep) && !hosts.contains_key(dep) {
                ctx.error(
                    *at,
                    format!("host `{host}` depends on `{dep}`, which is not a host in this file"),
                );
            } else {
                dag.add_edge(dep.clone(), host.clone());
            }
        }
    }
    if let Err(kmsconf_engine::Error::Cycle(cycle)) = dag.topological_order() {
        let first = &cycle[0];
        let next = cycle.get(1).unwrap_or(first);
        // point at the `depends_on` entry that closes the cycle: `next` depends on `first`
        let at = spans
            .get(next)
            .and_then(|d| d.iter().find(|(dep, _)| dep == first))
            .map_or(0, |(_, at)| *at);
        ctx.error(
            at,
            format!("dependency cycle between hosts: {}", cycle.join(" -> ")),
        );
    }
}

fn check_duplicate_targets(
    ctx: &mut Ctx,
    hosts: &BTreeMap<String, HostConfig>,
    spans: &BTreeMap<String, usize>,
) {
    let mut seen: Vec<(&TargetSpec, &str)> = Vec::new();
    for host in hosts.values() {
        let normalized = &host.target;
        if let Some((_, first)) = seen.iter().find(|(t, _)| same_target(t, normalized)) {
            let at = spans.get(&host.name).copied().unwrap_or(0);
            ctx.error(
                at,
                format!("hosts `{first}` and `{}` have the same target `{}`: one machine can only be declared once", host.name, host.target),
            );
        } else {
            seen.push((normalized, &host.name));
        }
    }
}

/// Host names are Windows computer names, which ignore case: `KMS01` and `kms01` are one host.
fn check_duplicate_names(ctx: &mut Ctx, hosts: &BTreeMap<String, HostConfig>) {
    let mut by_declaration: Vec<&HostConfig> = hosts.values().collect();
    by_declaration.sort_by(|a, b| a.declared_at.cmp(&b.declared_at));
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for host in by_declaration {
        match seen.get(&host.name.to_ascii_lowercase()) {
            Some(first) => ctx.diagnostics.push(Diagnostic::error(
                host.declared_at.clone(),
                format!(
                    "duplicate host: `{}` and `{first}` differ only in case, and computer names ignore case",
                    host.name
                ),
            )),
            None => {
                seen.insert(host.name.to_ascii_lowercase(), &host.name);
            }
        }
    }
}

fn same_target(a: &TargetSpec, b: &TargetSpec) -> bool {
    match (a, b) {
        (TargetSpec::Lab { path: x }, TargetSpec::Lab { path: y }) => normalize(x) == normalize(y),
        (
            TargetSpec::Ssh {
                host: h1, port: p1, ..
            },
            TargetSpec::Ssh {
                host: h2, port: p2, ..
            },
        ) => h1.eq_ignore_ascii_case(h2) && p1.unwrap_or(22) == p2.unwrap_or(22),
        _ => a == b,
    }
}

/// Removes `.` and `a/..` pairs without touching the file system (the file may not exist yet).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_addresses_take_the_form_discovery_reads_back() {
        let canonical = |text: &str| remote_address(text).expect(text);
        assert_eq!(canonical("localsubnet"), "LocalSubnet");
        assert_eq!(canonical("10.1.2.3/32"), "10.1.2.3");
        assert_eq!(canonical("10.0.0.0/08"), "10.0.0.0/8");
        assert_eq!(canonical("FE80:0::1/128"), "fe80::1");
        assert_eq!(canonical("FE80::/64"), "fe80::/64");
        assert_eq!(canonical("10.0.0.1-10.0.0.9"), "10.0.0.1-10.0.0.9");
        assert!(remote_address("10.0.0.0/33").is_err());
        let scope = |list: &str| {
            let text = format!("[hosts.kms01]\ntarget = \"lab:kms01.json\"\n[hosts.kms01.firewall]\nrule_groups = [\"key-management-service\"]\nremote_addresses = {list}\n");
            let config =
                crate::config::Config::parse(Path::new("kmsconf.toml"), &text).expect("valid");
            config.hosts["kms01"]
                .firewall
                .as_ref()
                .and_then(|f| f.remote_addresses.clone())
        };
        assert_eq!(
            scope("[\"localsubnet\", \"10.1.2.3/32\"]"),
            Some(vec!["LocalSubnet".to_string(), "10.1.2.3".to_string()])
        );
        // a rule open to `Any` reads back with no scope at all
        assert_eq!(scope("[\"any\"]"), Some(Vec::new()));
    }

    #[test]
    fn ssh_targets_take_domain_accounts_and_refuse_passwords() {
        let dir = Path::new("/srv/kms");
        let parsed = |text: &str| target_from_text(text, dir);
        assert_eq!(
            parsed("ssh://admin@corp.example@kms01.corp.example:2222"),
            Ok(TargetSpec::Ssh {
                user: Some("admin@corp.example".into()),
                host: "kms01.corp.example".into(),
                port: Some(2222),
            })
        );
        assert_eq!(
            parsed("ssh://CORP\\admin@kms01"),
            Ok(TargetSpec::Ssh {
                user: Some("CORP\\admin".into()),
                host: "kms01".into(),
                port: None,
            })
        );
        let e = parsed("ssh://admin:s3cret@kms01").expect_err("a password");
        assert!(
            e.contains("must not hold a password") && !e.contains("s3cret"),
            "{e}"
        );
        assert!(parsed("ssh://@kms01").is_err());
    }

    #[test]
    fn ssh_targets_show_ipv6_hosts_in_brackets() {
        let dir = Path::new("/srv/kms");
        for text in [
            "ssh://admin@[::1]:2222",
            "ssh://[fe80::1]",
            "ssh://kms01:22",
        ] {
            let spec = target_from_text(text, dir).expect(text);
            assert_eq!(spec.to_string(), text);
            assert_eq!(target_from_text(&spec.to_string(), dir), Ok(spec));
        }
    }

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
