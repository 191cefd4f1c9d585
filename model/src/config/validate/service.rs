//! The `[hosts.NAME.service]` table: each setting checked as its row says (a number against the
//! row's range, which Windows accepts), and the domains the host publishes itself in.

use super::{is_host_name, Ctx};
use crate::config::wire::{self, At, PublishDomainWire, ServiceValueWire};
use crate::config::{PublishDomain, ServiceConfig};
use crate::settings::{Kind, Setting, SettingValue};

/// A number within `row`'s range, as the row's kind; `None` after saying why not.
fn number(ctx: &mut Ctx, row: &Setting, value: &At<i64>) -> Option<SettingValue> {
    let v = *value.get();
    let fits = match row.kind {
        Kind::U16 => u16::try_from(v).ok().map(SettingValue::U16),
        _ => u32::try_from(v).ok().map(SettingValue::U32),
    };
    match (row.range, fits) {
        (Some(range), _) if !(i64::from(range.min)..=i64::from(range.max)).contains(&v) => {
            let words = range.words();
            let key = row.key;
            ctx.error(
                value.start(),
                format!("`{key}` = {v} is out of range: Windows accepts {words}"),
            );
            None
        }
        (_, None) => {
            let (key, meaning) = (row.key, row.meaning);
            ctx.error(value.start(), format!("`{key}` = {v} is not {meaning}"));
            None
        }
        (_, value) => value,
    }
}

pub(super) fn convert_service(ctx: &mut Ctx, s: wire::ServiceWire) -> ServiceConfig {
    let mut config = ServiceConfig::default();
    for (row, value) in &s.values {
        let value = match value {
            ServiceValueWire::Number(n) => number(ctx, row, n),
            ServiceValueWire::Bool(b) => Some(SettingValue::Bool(*b)),
            ServiceValueWire::List(list) => Some(SettingValue::List(convert_domains(ctx, list))),
        };
        if let Some(value) = value {
            config.insert(row, value);
        }
    }
    if let (Some(ServiceValueWire::Bool(false)), Some(ServiceValueWire::List(list))) =
        (s.get("dns_publishing"), s.get("publish_domains"))
    {
        ctx.warn(
            list.start(),
            "`publish_domains` has no effect while `dns_publishing = false`",
        );
    }
    config
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
