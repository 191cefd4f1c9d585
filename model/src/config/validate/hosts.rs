//! The host tables: one `[hosts.NAME]` to a [`HostConfig`], then the checks across hosts
//! (dependencies that exist and form no cycle, one declaration per machine and per name).

use kmsconf_engine::diagnostic::quoted;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::dns::convert_host_dns;
use super::firewall::convert_firewall;
use super::products::convert_product;
use super::service::convert_service;
use super::targets::parse_target;
use super::winrm::with_winrm_settings;
use super::{is_host_name, Ctx};
use crate::config::wire::HostWire;
use crate::config::{default_winrm_port, HostConfig, TargetSpec};
use kmsconf_engine::diagnostic::Diagnostic;
use kmsconf_engine::paths::{native, same_file_key};
use toml::de::DeValue;
use toml::Spanned;

pub(super) fn check_host_name(ctx: &mut Ctx, name: &str, at: usize) {
    if let Err(message) = crate::config::check_host_name(name) {
        ctx.error(at, message.to_string());
    }
}

pub(super) fn convert_host(
    ctx: &mut Ctx,
    name: &str,
    at: usize,
    wire: HostWire,
) -> Option<HostConfig> {
    let target = parse_target(ctx, &wire.target)
        .map(|t| with_winrm_settings(ctx, name, t, wire.target.start(), wire.winrm.as_ref()));
    let address = wire.address.as_ref().map(|a| {
        if !is_host_name(a.get()) && a.get().parse::<IpAddr>().is_err() {
            ctx.error(
                a.start(),
                format!(
                    "`address` {} is not a DNS name or an IP address",
                    quoted(a.get())
                ),
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
            p.license_pack_path = p
                .license_pack_path
                .as_ref()
                .map(|l| ctx.dir.join(native(l)));
        }
    }
    Some(HostConfig {
        name: name.to_string(),
        target: target?,
        address,
        state: wire.state,
        depends_on: wire.depends_on.iter().map(|d| d.get().clone()).collect(),
        service,
        firewall,
        products,
        dns,
        declared_at: ctx.at(at),
    })
}

/// The keys of a host table that declare what a KMS host should be, with where each is written.
const MANAGED_KEYS: [&str; 4] = ["service", "firewall", "products", "dns"];

/// The managed keys a host table holds, with their offsets, read before the table is
/// deserialized (which drops the keys' positions).
pub(super) fn managed_keys(body: &Spanned<DeValue>) -> Vec<(String, usize)> {
    let DeValue::Table(table) = body.get_ref() else {
        return Vec::new();
    };
    table
        .iter()
        .filter(|(key, _)| MANAGED_KEYS.contains(&key.get_ref().as_ref()))
        .map(|(key, _)| (key.get_ref().to_string(), key.span().start))
        .collect()
}

/// A retired host is retired as a whole: it declares no service, firewall, products or DNS (its
/// `winrm` table stays: kmsconf still reaches the host to retire it).
pub(super) fn check_retired_declares_nothing(
    ctx: &mut Ctx,
    name: &str,
    managed: &[(String, usize)],
) {
    for (key, at) in managed {
        ctx.error(
            *at,
            format!("host `{name}` is retired (`state = \"retired\"`), so it declares only `target`, `address`, `depends_on` and `winrm`: remove `{key}`"),
        );
    }
}

/// Nothing may wait for a retired host: it is retired after the DNS records it leaves are
/// removed, which waits for the published hosts, so a host depending on it would be a cycle.
pub(super) fn check_retired_dependencies(
    ctx: &mut Ctx,
    hosts: &BTreeMap<String, HostConfig>,
    spans: &BTreeMap<String, Vec<(String, usize)>>,
) {
    for (host, deps) in spans {
        for (dep, at) in deps {
            if hosts.get(dep).is_some_and(HostConfig::is_retired) {
                ctx.error(*at, format!("host `{host}` depends on `{dep}`, which is retired: a retired host is converged after the others, so no host can wait for it"));
            }
        }
    }
}

pub(super) fn check_dependencies(
    ctx: &mut Ctx,
    hosts: &BTreeMap<String, HostConfig>,
    spans: &BTreeMap<String, Vec<(String, usize)>>,
) {
    let mut valid: Vec<(String, Vec<String>)> = Vec::new();
    for (host, deps) in spans {
        let mut kept = Vec::new();
        for (dep, at) in deps {
            if dep == host {
                ctx.error(*at, format!("host `{host}` depends on itself"));
            } else if !spans.contains_key(dep) && !hosts.contains_key(dep) {
                ctx.error(
                    *at,
                    format!("host `{host}` depends on `{dep}`, which is not a host in this file"),
                );
            } else {
                kept.push(dep.clone());
            }
        }
        valid.push((host.clone(), kept));
    }
    if let Err(kmsconf_engine::Error::Cycle(cycle)) = kmsconf_engine::graph::Dag::from_deps(valid) {
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

/// Two hosts that reach one machine. Each target is reduced to a key once (a lab file through
/// its symlinks, and without case on Windows; an ssh host without case and with its port), so
/// the check is one map lookup a host, not a comparison with every host before it. When the two
/// are written differently, the error shows both.
pub(super) fn check_duplicate_targets(
    ctx: &mut Ctx,
    hosts: &BTreeMap<String, HostConfig>,
    spans: &BTreeMap<String, usize>,
) {
    let mut seen: HashMap<TargetKey, &HostConfig> = HashMap::new();
    for host in hosts.values() {
        match seen.entry(target_key(&host.target)) {
            Entry::Occupied(first) => {
                let first = first.get();
                let at = spans.get(&host.name).copied().unwrap_or(0);
                let (one, other) = (first.target.to_string(), host.target.to_string());
                let targets = if one == other {
                    format!("the same target `{one}`")
                } else {
                    format!("the same target (`{one}` and `{other}` are one machine)")
                };
                ctx.error(
                    at,
                    format!(
                        "hosts `{}` and `{}` have {targets}: one machine can only be declared once",
                        first.name, host.name
                    ),
                );
            }
            Entry::Vacant(slot) => {
                slot.insert(host);
            }
        }
    }
}

/// What makes two targets one machine.
#[derive(PartialEq, Eq, Hash)]
enum TargetKey {
    Lab(PathBuf),
    Ssh(String, u16),
    WinRm(String, u16),
    Other(String),
}

fn target_key(target: &TargetSpec) -> TargetKey {
    match target {
        TargetSpec::Lab { path } => TargetKey::Lab(same_file_key(&lab_file(path))),
        TargetSpec::Ssh { host, port, .. } => {
            TargetKey::Ssh(host.to_ascii_lowercase(), port.unwrap_or(22))
        }
        TargetSpec::WinRm {
            https, host, port, ..
        } => TargetKey::WinRm(
            host.to_ascii_lowercase(),
            port.unwrap_or(default_winrm_port(*https)),
        ),
        other => TargetKey::Other(other.to_string()),
    }
}

/// The file a lab path names: through symlinks when it (or its directory) exists, else the path
/// with `.` and `a/..` removed (the file may not exist yet).
fn lab_file(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let dir = path.parent().and_then(|d| std::fs::canonicalize(d).ok());
    match (dir, path.file_name()) {
        (Some(dir), Some(name)) => dir.join(name),
        _ => normalize(path),
    }
}

/// Host names are Windows computer names, which ignore case: `KMS01` and `kms01` are one host.
pub(super) fn check_duplicate_names(ctx: &mut Ctx, hosts: &BTreeMap<String, HostConfig>) {
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
