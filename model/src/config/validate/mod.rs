//! From TOML text to validated [`HostConfig`]s, collecting every diagnostic on the way.
//!
//! Each host table is deserialized on its own, so an error in one host does not hide the errors
//! in the next; cross-field and cross-host checks run on what did deserialize. A config laid out
//! host by host is also parsed host by host ([`sections`]), so memory holds one host's parse tree
//! at a time.

mod adba;
mod depth;
mod dns;
mod firewall;
mod fleet;
mod hosts;
mod kerberos;
mod products;
mod secrets;
mod sections;
mod service;
mod targets;
mod winrm;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;
use toml::de::{DeString, DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::wire::{ActiveDirectoryWire, DnsWire, FleetWire, HostLifecycle, HostWire};
use super::{AdConfig, DnsConfig, FleetConfig, HostConfig};
use dns::Published;
use kmsconf_engine::diagnostic::{Diagnostic, LineIndex, Location};

pub(super) use targets::target_from_text;

struct Ctx<'a> {
    path: &'a Path,
    dir: &'a Path,
    source: &'a str,
    lines: LineIndex,
    diagnostics: Vec<Diagnostic>,
    /// Where the part of `source` being read starts: offsets given to [`Ctx::at`] count from here.
    base: usize,
}

impl<'a> Ctx<'a> {
    fn new(path: &'a Path, dir: &'a Path, source: &'a str) -> Self {
        Self {
            path,
            dir,
            source,
            lines: LineIndex::new(source),
            diagnostics: Vec::new(),
            base: 0,
        }
    }
    fn at(&self, offset: usize) -> Location {
        self.lines
            .location(self.path, self.source, self.base + offset)
    }
    /// An offset in the part being read as an offset in the whole source, for what is checked
    /// after every part is read.
    fn absolute(&self, offset: usize) -> usize {
        self.base + offset
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

/// What validation produced: the hosts, and the `[dns]`, `[active_directory]` and `[fleet]`
/// tables when there are.
type Validated = (
    BTreeMap<String, HostConfig>,
    Option<DnsConfig>,
    Option<AdConfig>,
    Option<FleetConfig>,
);

/// What the top-level tables held, with the places the cross-host checks point at.
#[derive(Default)]
struct Found {
    hosts: BTreeMap<String, HostConfig>,
    depends_spans: BTreeMap<String, Vec<(String, usize)>>,
    target_spans: BTreeMap<String, usize>,
    dns: Option<DnsConfig>,
    // where `[dns]` is declared, also when it does not convert: its own errors say what is wrong
    dns_at: Option<usize>,
    published: Vec<Published>,
    active_directory: Option<AdConfig>,
    vias: adba::Vias,
    fleet: Option<FleetConfig>,
}

pub(super) fn validate(
    path: &Path,
    dir: &Path,
    source: &str,
) -> (Option<Validated>, Vec<Diagnostic>) {
    let mut ctx = Ctx::new(path, dir, source);
    let found = match read_by_parts(&mut ctx) {
        Some(found) => found,
        None => {
            ctx.base = 0;
            ctx.diagnostics.clear();
            let Some(root) = parse_toml(&mut ctx) else {
                return (None, ctx.diagnostics);
            };
            read_whole(&mut ctx, root)
        }
    };
    let validated = check_across_hosts(&mut ctx, found);
    (Some(validated), ctx.diagnostics)
}

/// The checks that look at more than one host, or at the hosts and `[dns]` together.
fn check_across_hosts(ctx: &mut Ctx, mut found: Found) -> Validated {
    // the order a whole parse reads hosts in, which names the first of two hosts sharing an address
    found.published.sort_by(|a, b| a.host.cmp(&b.host));
    let hosts = &found.hosts;
    hosts::check_dependencies(ctx, hosts, &found.depends_spans);
    hosts::check_retired_dependencies(ctx, hosts, &found.depends_spans);
    hosts::check_duplicate_targets(ctx, hosts, &found.target_spans);
    hosts::check_duplicate_names(ctx, hosts);
    dns::check_published(ctx, found.dns_at, hosts, &found.published);
    dns::check_retired(ctx, found.dns_at, hosts);
    adba::check_via(ctx, found.active_directory.is_some(), &found.vias, hosts);
    (found.hosts, found.dns, found.active_directory, found.fleet)
}

/// Reads the config one part ([`sections::split`]) at a time: `None` when it is not laid out so
/// that the parts are the whole (keys before the first header, an owner written in two places,
/// a top-level key other than `hosts` and `dns`) or a part does not parse, and the whole
/// document must be parsed to say the same as for any other layout.
fn read_by_parts(ctx: &mut Ctx) -> Option<Found> {
    let mut found = Found::default();
    let mut owners = HashSet::new();
    let mut fleet_seen = false;
    for part in sections::split(ctx.source)? {
        let mut root = DeTable::parse(&ctx.source[part.clone()])
            .ok()?
            .into_inner()
            .into_iter();
        let (key, value) = root.next()?;
        if root.next().is_some() {
            return None;
        }
        ctx.base = part.start;
        match key.get_ref().as_ref() {
            "dns" if owners.insert(None) => read_dns(ctx, &mut found, key.span().start, value),
            "fleet" if !std::mem::replace(&mut fleet_seen, true) => {
                read_fleet(ctx, &mut found, value);
            }
            "hosts" => {
                let DeValue::Table(hosts) = value.into_inner() else {
                    return None;
                };
                let mut hosts = hosts.into_iter();
                let (name, body) = hosts.next()?;
                if hosts.next().is_some() || !owners.insert(Some(name.get_ref().to_string())) {
                    return None;
                }
                read_host(ctx, &mut found, name, body);
            }
            _ => return None,
        }
    }
    ctx.base = 0;
    Some(found)
}

/// Reads the parsed document's top-level tables.
fn read_whole(ctx: &mut Ctx, root: DeTable) -> Found {
    let mut found = Found::default();
    for (key, value) in root {
        if key.get_ref() == "dns" {
            read_dns(ctx, &mut found, key.span().start, value);
        } else if key.get_ref() == "hosts" {
            read_hosts(ctx, &mut found, value);
        } else if key.get_ref() == "active_directory" {
            read_active_directory(ctx, &mut found, key.span().start, value);
        } else if key.get_ref() == "fleet" {
            read_fleet(ctx, &mut found, value);
        } else {
            ctx.error(
                key.span().start,
                format!(
                    "unknown key `{}`, expected `hosts`, `dns`, `active_directory` or `fleet`",
                    key.get_ref()
                ),
            );
        }
    }
    found
}

/// The document's top-level table, or the syntax error that stops validation.
fn parse_toml<'a>(ctx: &mut Ctx<'a>) -> Option<DeTable<'a>> {
    match DeTable::parse(ctx.source) {
        Ok(root) => Some(root.into_inner()),
        Err(e) => {
            let mut span = e.span().unwrap_or(0..0);
            let mut message = e.message().trim().to_string();
            if message == "recursion limit" && e.span().is_none() {
                // the reader does not say where; the deepest key is the one it refused
                if let Some((start, parts)) = depth::deepest_key(ctx.source) {
                    span = start..start;
                    message = format!("this dotted key has {parts} parts, more than the TOML reader takes (its recursion limit); no kmsconf setting is nested that deep");
                }
            } else if message == "duplicate key" {
                let key = ctx.source.get(span.clone()).unwrap_or_default();
                message = format!(
                    "duplicate key `{key}`: each host and each setting may be declared only once"
                );
            }
            ctx.error(span.start, message);
            None
        }
    }
}

fn read_dns(ctx: &mut Ctx, found: &mut Found, at: usize, value: Spanned<DeValue>) {
    found.dns_at = Some(ctx.absolute(at));
    match DnsWire::deserialize(ValueDeserializer::from(value)) {
        Ok(wire) => found.dns = dns::convert_dns(ctx, at, wire),
        Err(e) => {
            let offset = e.span().map_or(at, |s| s.start);
            ctx.error(offset, e.message().trim().to_string());
        }
    }
}

fn read_active_directory(ctx: &mut Ctx, found: &mut Found, at: usize, value: Spanned<DeValue>) {
    match ActiveDirectoryWire::deserialize(ValueDeserializer::from(value)) {
        Ok(wire) => {
            let (config, vias) = adba::convert(ctx, wire);
            found.active_directory = Some(config);
            found.vias = vias;
        }
        Err(e) => {
            let offset = e.span().map_or(at, |s| s.start);
            ctx.error(offset, e.message().trim().to_string());
        }
    }
}

fn read_fleet(ctx: &mut Ctx, found: &mut Found, value: Spanned<DeValue>) {
    let at = value.span().start;
    match FleetWire::deserialize(ValueDeserializer::from(value)) {
        Ok(wire) => found.fleet = Some(fleet::convert(ctx, wire)),
        Err(e) => {
            let offset = e.span().map_or(at, |s| s.start);
            ctx.error(offset, e.message().trim().to_string());
        }
    }
}

fn read_hosts(ctx: &mut Ctx, found: &mut Found, value: Spanned<DeValue>) {
    let span = value.span();
    let DeValue::Table(table) = value.into_inner() else {
        ctx.error(
            span.start,
            "`hosts` must be a table of hosts: `[hosts.NAME]`",
        );
        return;
    };
    for (name, body) in table {
        read_host(ctx, found, name, body);
    }
}

fn read_host(ctx: &mut Ctx, found: &mut Found, name: Spanned<DeString>, body: Spanned<DeValue>) {
    let name_at = name.span().start;
    let name = name.into_inner().into_owned();
    hosts::check_host_name(ctx, &name, name_at);
    let managed = hosts::managed_keys(&body);
    let wire = match HostWire::deserialize(ValueDeserializer::from(body)) {
        Ok(wire) => wire,
        Err(e) => {
            let offset = e.span().map_or(name_at, |s| s.start);
            ctx.error(offset, e.message().trim().to_string());
            return;
        }
    };
    found.depends_spans.insert(
        name.clone(),
        wire.depends_on
            .iter()
            .map(|d| (d.get().clone(), ctx.absolute(d.start())))
            .collect(),
    );
    found
        .target_spans
        .insert(name.clone(), ctx.absolute(wire.target.start()));
    if wire.state == HostLifecycle::Retired {
        hosts::check_retired_declares_nothing(ctx, &name, &managed);
    }
    if let Some(table) = &wire.dns {
        found.published.push(Published {
            host: name.clone(),
            table_at: ctx.absolute(table.start()),
            address: wire
                .address
                .as_ref()
                .map(|a| (a.get().clone(), ctx.absolute(a.start()))),
        });
    }
    if let Some(host) = hosts::convert_host(ctx, &name, name_at, wire) {
        found.hosts.insert(name, host);
    }
}

/// Dot-separated labels of letters, digits, `-` and `_` (not at either end of a label for `-`),
/// at most 63 characters each and 253 in all; one trailing dot is allowed.
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

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str = r#"
[dns]
server = "127.0.0.1:15353"
zones = ["corp.example"]

[hosts.kms02]
target = "lab:kms02.json"
address = "kms.corp.example"
depends_on = ["kms01", "kms09"]
[hosts.kms02.service]
port = 99999
[hosts.kms02.dns]

[hosts.kms01]
target = "lab:kms02.json"
address = "kms.corp.example"
[hosts.kms01.dns]
[hosts.kms01.products.windows]
host_key = { env = "KMS_HOST_KEY" }

[hosts."KMS03"]
target = "lab:kms03.json"
bogus = 1

[hosts.kms04]
target = "lab:kms04.json"
[hosts.kms04.products.windows]
host_key = { env = "KMS_HOST_KEY", file = "key.txt" }
"#;

    /// What validation found and said, as text to compare.
    fn read(source: &str, by_parts: bool) -> (String, Vec<String>) {
        let path = Path::new("kmsconf.toml");
        let mut ctx = Ctx::new(path, Path::new("."), source);
        let found = if by_parts {
            read_by_parts(&mut ctx).expect("laid out host by host")
        } else {
            let root = parse_toml(&mut ctx).expect("parses");
            read_whole(&mut ctx, root)
        };
        let seen = format!("{:?}", check_across_hosts(&mut ctx, found));
        // in the order `Config::parse` shows them: the parts are read in the document's order,
        // a whole parse in the keys' order
        ctx.diagnostics.sort_by(|a, b| {
            a.location
                .cmp(&b.location)
                .then(a.severity.cmp(&b.severity))
        });
        let said = ctx.diagnostics.iter().map(|d| format!("{d:?}")).collect();
        (seen, said)
    }

    #[test]
    fn a_config_read_host_by_host_is_read_as_a_whole_parse_reads_it() {
        let (seen, said) = read(HOSTS, true);
        assert_eq!((seen.clone(), said.clone()), read(HOSTS, false));
        let said = said.join("\n");
        for message in [
            "99999 is out of range",
            "unknown field `bogus`",
            "exactly one of `env` or `file`",
            "hosts `kms01` and `kms02` are both published with the address `kms.corp.example`",
            "`kms09`",
        ] {
            assert!(said.contains(message), "{message}: {said}");
        }
        assert!(seen.contains("kms02"), "{seen}");
    }

    #[test]
    fn a_config_not_laid_out_host_by_host_is_parsed_whole() {
        let path = Path::new("kmsconf.toml");
        for source in [
            "[hosts.a]\ntarget = \"lab:a.json\"\n[hosts.b]\ntarget = \"lab:b.json\"\n[hosts.a.service]\nport = 1689\n",
            "[hosts.a]\ntarget = \"lab:a.json\"\n[hosts.\"a\"]\ntarget = \"lab:b.json\"\n",
            "hosts.a.target = \"lab:a.json\"\n",
            "[hosts]\n[hosts.a]\ntarget = \"lab:a.json\"\n",
            "[hosts.a]\ntarget = \"lab:a.json\"\n[other]\n",
            "[hosts.a]\ntarget = \"lab:a.json\"\n[hosts.b\n",
        ] {
            let mut ctx = Ctx::new(path, Path::new("."), source);
            assert!(read_by_parts(&mut ctx).is_none(), "{source}");
        }
    }
}
