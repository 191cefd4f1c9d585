//! The checks read from the KMS host's event log (as `kmsconf clients` summarizes it): cloned
//! images (one CMID from two or more names), an idle host, failed DNS publishing (event 12293)
//! and the Software Protection service. Pure functions of the summary.

use kmsconf_model::catalog;
use kmsconf_model::clock;
use kmsconf_model::events::timestamp;

use crate::clients::HostClients;

use super::{
    Check, Verdict, CMID_DUPLICATES, DNS_PUBLISHING, EVENT_LOG, KMS_IDLE, SERVICE_RUNNING,
};

/// Where the duplicate-CMID fix comes from.
const CMID_SOURCES: &str = "Microsoft Learn, \"Guidelines for troubleshooting KMS\" (the count stays low when images lack unique CMIDs) and \"Slmgr.vbs options\" (/rearm)";

/// Every event-log check of one host; `idle` in seconds; `managed_srv`: kmsconf writes the
/// host's `_vlmcs._tcp` record (`[hosts.NAME.dns]`).
pub fn check_events(clients: &HostClients, idle: i64, managed_srv: bool) -> Vec<Check> {
    let host = clients.host.as_str();
    if let Some(e) = &clients.error {
        let check = Check::new(host, EVENT_LOG, Verdict::Warning, "cannot read the KMS host's event log, so the client, idle, DNS publishing and service checks did not run")
            .failure(e.clone());
        return vec![check];
    }
    vec![
        cmid_duplicates(clients),
        kms_idle(clients, idle),
        dns_publishing(clients, managed_srv),
        service_running(clients),
    ]
}

/// Failed when one CMID asked from two or more names: clones of an image that was not
/// generalized, which the host counts as one client.
pub fn cmid_duplicates(clients: &HostClients) -> Check {
    let host = clients.host.as_str();
    let Some(first) = clients.duplicates.first() else {
        return Check::new(
            host,
            CMID_DUPLICATES,
            Verdict::Ok,
            "no client machine ID asks from two names",
        );
    };
    let shown: Vec<&str> = first.fqdns.iter().take(5).map(String::as_str).collect();
    let more = first.fqdns.len().saturating_sub(shown.len());
    let others = clients.duplicates.len() - 1;
    let detail = format!(
        "CMID `{}` asks from {} names ({}{}){}: the host counts them as one client",
        first.cmid,
        first.fqdns.len(),
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        },
        if others > 0 {
            format!(", and {others} more CMID(s) do the same")
        } else {
            String::new()
        },
    );
    Check::new(host, CMID_DUPLICATES, Verdict::Failed, detail)
        .about(first.cmid.clone())
        .fix(format!("the machines were cloned from an image that was not generalized: run `sysprep /generalize` on the image before capturing it, or on each clone run `slmgr.vbs /rearm` and reboot, which gives it a new CMID (sources: {CMID_SOURCES})"))
}

/// Warning when the newest request is older than `idle` (or there is none in the window).
pub fn kms_idle(clients: &HostClients, idle: i64) -> Check {
    let host = clients.host.as_str();
    let now = clients
        .clock
        .as_deref()
        .and_then(timestamp)
        .unwrap_or_else(clock::now);
    let last = clients.last_request.as_deref().and_then(timestamp);
    match last {
        Some(at) if now.saturating_sub(at) <= idle => Check::new(
            host,
            KMS_IDLE,
            Verdict::Ok,
            format!("a client asked within the last {} (`--idle`)", clock::human(idle)),
        ),
        Some(at) => Check::new(
            host,
            KMS_IDLE,
            Verdict::Warning,
            format!(
                "no request for {} (the newest at {}; `--idle` is {})",
                clock::human(now.saturating_sub(at)),
                clock::rfc3339(at),
                clock::human(idle)
            ),
        )
        .fix("check that clients find this host (`doctor`'s dns-srv and port-reachable checks, `nslookup -type=srv _vlmcs._tcp` on a client) and that the firewall lets TCP 1688 in"),
        None => Check::new(host, KMS_IDLE, Verdict::Warning, "no activation request in the window (no event 12290)")
            .fix("check that clients find this host (`doctor`'s dns-srv and port-reachable checks) and that the firewall lets TCP 1688 in; a full Key Management Service log also loses requests"),
    }
}

/// Failed on an event 12293 in the window, its code explained.
pub fn dns_publishing(clients: &HostClients, managed_srv: bool) -> Check {
    let host = clients.host.as_str();
    let Some(last) = clients.dns_failures.last() else {
        return Check::new(
            host,
            DNS_PUBLISHING,
            Verdict::Ok,
            "no DNS publishing failure (event 12293) in the window",
        );
    };
    let code = catalog::parse_code(&last.code);
    let meaning = code
        .and_then(catalog::code)
        .map(|c| format!(": {}", c.meaning));
    let detail = format!(
        "publishing the SRV record in `{}` failed {} time(s) in the window, last at {} with {}{}",
        last.domain,
        clients.dns_failures.len(),
        last.at,
        last.code,
        meaning.unwrap_or_default()
    );
    let fix = if managed_srv {
        "kmsconf writes this host's `_vlmcs._tcp` record (`[dns]`): set `dns_publishing = false` in the host's `[service]` so the host stops publishing it too".to_string()
    } else {
        code.and_then(catalog::code).map_or_else(
            || "see `kmsconf explain` for the code; give the host rights to update `_vlmcs._tcp`, or publish the record yourself and set `dns_publishing = false`".to_string(),
            |c| c.fix.clone(),
        )
    };
    let check = Check::new(host, DNS_PUBLISHING, Verdict::Failed, detail)
        .about(last.domain.clone())
        .fix(fix);
    match code {
        Some(c) => check.code(c),
        None => check,
    }
}

/// Failed when the Software Protection service is not running, or is disabled.
pub fn service_running(clients: &HostClients) -> Check {
    let host = clients.host.as_str();
    match &clients.service {
        None => Check::new(host, SERVICE_RUNNING, Verdict::Failed, "the host has no Software Protection service (sppsvc)"),
        Some(s) if s.running && s.set_to_start => Check::new(
            host,
            SERVICE_RUNNING,
            Verdict::Ok,
            format!("sppsvc is running (start mode {})", s.start_mode),
        ),
        Some(s) => Check::new(
            host,
            SERVICE_RUNNING,
            Verdict::Failed,
            format!(
                "sppsvc is {} and its start mode is {}: the host answers no activation request",
                if s.running { "running" } else { "stopped" },
                s.start_mode
            ),
        )
        .fix("set the Software Protection service back to start automatically (its default) and start it (`Start-Service sppsvc`)"),
    }
}
