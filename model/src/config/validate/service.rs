//! The `[hosts.NAME.service]` table: the KMS service settings, each checked against the range
//! Windows accepts, and the domains the host publishes itself in.

use super::{is_host_name, Ctx};
use crate::config::wire::{self, At, PublishDomainWire};
use crate::config::{PublishDomain, ServiceConfig, INTERVAL_RANGE, PORT_RANGE};

fn in_range(
    ctx: &mut Ctx,
    key: &str,
    value: &At<i64>,
    range: &std::ops::RangeInclusive<u32>,
    unit: &str,
) -> Option<i64> {
    let v = *value.get();
    let (min, max) = (range.start(), range.end());
    if !(i64::from(*min)..=i64::from(*max)).contains(&v) {
        ctx.error(
            value.start(),
            format!("`{key}` = {v} is out of range: Windows accepts {min} to {max}{unit}"),
        );
        return None;
    }
    Some(v)
}

pub(super) fn convert_service(ctx: &mut Ctx, s: wire::ServiceWire) -> ServiceConfig {
    let minutes = " minutes (30 days)";
    let port = s
        .port
        .as_ref()
        .and_then(|p| in_range(ctx, "port", p, &PORT_RANGE, ""));
    let ai = s
        .activation_interval
        .as_ref()
        .and_then(|v| in_range(ctx, "activation_interval", v, &INTERVAL_RANGE, minutes));
    let ri = s
        .renewal_interval
        .as_ref()
        .and_then(|v| in_range(ctx, "renewal_interval", v, &INTERVAL_RANGE, minutes));
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
