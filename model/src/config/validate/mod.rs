//! From TOML text to validated [`HostConfig`]s, collecting every diagnostic on the way.
//!
//! Each host table is deserialized on its own, so an error in one host does not hide the errors
//! in the next; cross-field and cross-host checks run on what did deserialize.

mod dns;
mod firewall;
mod hosts;
mod products;
mod secrets;
mod service;
mod targets;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::de::{DeString, DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::wire::{DnsWire, HostLifecycle, HostWire};
use super::{DnsConfig, HostConfig};
use dns::Published;
use kmsconf_engine::diagnostic::{Diagnostic, LineIndex, Location};

pub(super) use targets::target_from_text;

struct Ctx<'a> {
    path: &'a Path,
    dir: &'a Path,
    source: &'a str,
    lines: LineIndex,
    diagnostics: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn at(&self, offset: usize) -> Location {
        self.lines.location(self.path, self.source, offset)
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
}

pub(super) fn validate(
    path: &Path,
    dir: &Path,
    source: &str,
) -> (Option<Validated>, Vec<Diagnostic>) {
    let mut ctx = Ctx {
        path,
        dir,
        source,
        lines: LineIndex::new(source),
        diagnostics: Vec::new(),
    };
    let Some(root) = parse_toml(&mut ctx) else {
        return (None, ctx.diagnostics);
    };
    let mut found = Found::default();
    for (key, value) in root {
        if key.get_ref() == "dns" {
            read_dns(&mut ctx, &mut found, key.span().start, value);
        } else if key.get_ref() == "hosts" {
            read_hosts(&mut ctx, &mut found, value);
        } else {
            ctx.error(
                key.span().start,
                format!("unknown key `{}`, expected `hosts` or `dns`", key.get_ref()),
            );
        }
    }
    let hosts = &found.hosts;
    hosts::check_dependencies(&mut ctx, hosts, &found.depends_spans);
    hosts::check_retired_dependencies(&mut ctx, hosts, &found.depends_spans);
    hosts::check_duplicate_targets(&mut ctx, hosts, &found.target_spans);
    hosts::check_duplicate_names(&mut ctx, hosts);
    dns::check_published(&mut ctx, found.dns_at, hosts, &found.published);
    dns::check_retired(&mut ctx, found.dns_at, hosts);
    (Some((found.hosts, found.dns)), ctx.diagnostics)
}

/// The document's top-level table, or the syntax error that stops validation.
fn parse_toml<'a>(ctx: &mut Ctx<'a>) -> Option<DeTable<'a>> {
    match DeTable::parse(ctx.source) {
        Ok(root) => Some(root.into_inner()),
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let mut message = e.message().trim().to_string();
            if message == "duplicate key" {
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
    found.dns_at = Some(at);
    match DnsWire::deserialize(ValueDeserializer::from(value)) {
        Ok(wire) => found.dns = dns::convert_dns(ctx, at, wire),
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
            .map(|d| (d.get().clone(), d.start()))
            .collect(),
    );
    found.target_spans.insert(name.clone(), wire.target.start());
    if wire.state == HostLifecycle::Retired {
        hosts::check_retired_declares_nothing(ctx, &name, &managed);
    }
    if let Some(table) = &wire.dns {
        found.published.push(Published {
            host: name.clone(),
            table_at: table.start(),
            address: wire.address.as_ref().map(|a| (a.get().clone(), a.start())),
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
