//! `kmsconf doctor`: runs the troubleshooting checks on each host and prints each verdict with
//! why and the fix. Exit 0 when nothing failed, 1 otherwise, so pipelines can gate on it.

use std::fmt::Write as _;
use std::process::ExitCode;

use kmsconf_app::doctor::{self, Check, ExpectedSrv, RetiredSrv, SrvLookup, Verdict};
use kmsconf_app::output::{DoctorOutput, DoctorSummary};
use kmsconf_app::session as app;
use kmsconf_model::config::Config;
use kmsconf_targets::dns::SrvResolver;

use super::openmetrics::{self, Format};
use super::render::Style;
use super::{output, session, CliError, ConfigArg};

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Print one JSON object: `{ "format_version", "checks": [...], "summary" }`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// How to print it: `openmetrics` for node_exporter's textfile collector.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Human)]
    format: Format,
    /// Only this host (repeatable).
    #[arg(long = "host", value_name = "NAME")]
    hosts: Vec<String>,
}

pub fn run(args: DoctorArgs) -> Result<ExitCode, CliError> {
    let config = session::load_config(&args.config.file)?;
    let connect = session::connect()?;
    let per_host = app::each_host(&config, &args.hosts, 8, |host| {
        let target =
            kmsconf_targets::open(&host.name, &host.target, &connect).map_err(|e| e.to_string());
        let diagnosis = doctor::diagnose(host, target.as_deref().map_err(Clone::clone));
        (host.name.clone(), diagnosis)
    })?;
    let created: Vec<(String, String)> = per_host
        .iter()
        .filter_map(|(name, d)| d.created.clone().map(|n| (name.clone(), n)))
        .collect();
    session::report_created(&created, args.json || args.format != Format::Human);
    let diagnosed: Vec<String> = per_host.iter().map(|(name, _)| name.clone()).collect();
    let mut checks: Vec<Check> = per_host.into_iter().flat_map(|(_, d)| d.checks).collect();
    if let Some(inputs) = dns_inputs(&config, &args.hosts) {
        checks.extend(doctor::dns_checks(
            &inputs.expected,
            &inputs.retired,
            inputs.lookup.as_ref(),
        ));
    }
    let summary = DoctorSummary::of(&checks);
    if args.format == Format::Openmetrics {
        output::emit(&openmetrics::doctor(&diagnosed, &checks))?;
    } else if args.json || args.format == Format::Json {
        output::emit(&output::json(&DoctorOutput::new(checks)))?;
    } else {
        output::emit(&render(&checks, Style::stdout()))?;
    }
    Ok(if summary.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What the DNS checks compare and with what.
struct DnsInputs {
    expected: Vec<ExpectedSrv>,
    retired: Vec<RetiredSrv>,
    lookup: Box<dyn SrvLookup>,
}

/// The declared `_vlmcs._tcp` records (one per zone and published host: target = the host's
/// `address`, port = its `[service] port` or 1688), the retired hosts' addresses no record may
/// point at, and a resolver asking `[dns] server`, when the config has a `[dns]` table and
/// `--host` selects `dns` (or nothing).
fn dns_inputs(config: &Config, only: &[String]) -> Option<DnsInputs> {
    let dns = config
        .dns
        .as_ref()
        .filter(|_| app::select(config, only).is_ok_and(|s| s.dns))?;
    let mut expected = Vec::new();
    let mut retired = Vec::new();
    for zone in &dns.zones {
        for host in config.hosts.values() {
            if let (true, Some(address)) = (host.is_retired(), &host.address) {
                retired.push(RetiredSrv {
                    host: host.name.clone(),
                    zone: zone.clone(),
                    target: address.clone(),
                });
            }
            let (Some(publish), Some(address)) = (host.dns, &host.address) else {
                continue;
            };
            expected.push(ExpectedSrv {
                host: host.name.clone(),
                zone: zone.clone(),
                target: address.clone(),
                port: host.kms_port(),
                priority: publish.priority,
                weight: publish.weight,
            });
        }
    }
    Some(DnsInputs {
        expected,
        retired,
        lookup: Box::new(SrvResolver::new(&dns.server)),
    })
}

/// The human report: one block per host, one line per check, the fix under what is not ok.
pub fn render(checks: &[Check], style: Style) -> String {
    let mut out = String::new();
    let mut current: Option<&str> = None;
    let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    for c in checks {
        if current != Some(c.host.as_str()) {
            if current.is_some() {
                out.push('\n');
            }
            let _ = writeln!(out, "{}", style.bold(&format!("host {}", c.host)));
            current = Some(&c.host);
        }
        let word = format!("{:<7}", c.status.word());
        let word = match c.status {
            Verdict::Ok => style.green(&word),
            Verdict::Warning => style.yellow(&word),
            Verdict::Failed => style.red(&word),
        };
        let code = c.code.as_deref().filter(|_| c.status != Verdict::Ok);
        let code = code.map(|k| format!(" [{k}]")).unwrap_or_default();
        let _ = writeln!(out, "  {word}  {:<width$}  {}{code}", c.check, c.detail);
        if let Some(fix) = c.fix.as_deref().filter(|_| c.status != Verdict::Ok) {
            let _ = writeln!(
                out,
                "  {:<7}  {:<width$}  {}",
                "",
                "",
                style.dim(&format!("fix: {fix}"))
            );
        }
    }
    let summary = DoctorSummary::of(checks);
    let _ = writeln!(
        out,
        "\nDoctor: {} ok, {} warning{}, {} failed.",
        summary.ok,
        summary.warning,
        if summary.warning == 1 { "" } else { "s" },
        summary.failed
    );
    out
}
