//! `kmsconf status`: what each host and each of its KMS host products looks like now, as
//! `slmgr.vbs /dlv` and `/dli all` would show it; a table for people, `--json` for scripts.

use std::fmt::Write as _;
use std::process::ExitCode;

use kmsconf_app::output::StatusOutput;
use kmsconf_app::status::{self, AdStatus, HostStatus, KeyCoverage, ProductStatus};
use kmsconf_model::config::{HostLifecycle, ProductId};
use kmsconf_model::state::{Channel, LicenseStatus};

use super::openmetrics::{self, Format};
use super::render::Style;
use super::terminal::inline;
use super::{output, session, CliError, ConfigArg};

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Print one JSON object: `{ "format_version", "hosts": [...] }`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// How to print it: `openmetrics` for node_exporter's textfile collector.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Human)]
    format: Format,
    /// Only this host (repeatable).
    #[arg(long = "host", value_name = "NAME")]
    hosts: Vec<String>,
}

impl StatusArgs {
    pub fn json(&self) -> bool {
        self.json || self.format == Format::Json
    }
}

pub fn run(args: StatusArgs) -> Result<ExitCode, CliError> {
    let (config, connect) = session::read_only(&args.config.file)?;
    let report = status::run(&config, &args.hosts, &connect, session::READ_PARALLELISM)?;
    session::report_created(&report.created, args.json || args.format != Format::Human);
    let unread = report.unread();
    let hosts = report.hosts;
    if args.format == Format::Openmetrics {
        output::emit(&openmetrics::status(&hosts))?;
    } else if args.json || args.format == Format::Json {
        let out = StatusOutput {
            active_directory: report.active_directory,
            ..StatusOutput::new(hosts)
        };
        output::emit(&output::json(&out))?;
    } else {
        let mut text = render(&hosts, Style::stdout());
        if let Some(ad) = &report.active_directory {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&render_directory(ad, Style::stdout()));
        }
        output::emit_text(&text)?;
    }
    Ok(session::exit_status(unread))
}

/// The human status: one block per host, one table row per KMS host product.
pub fn render(hosts: &[HostStatus], style: Style) -> String {
    let mut out = String::new();
    for (i, h) in hosts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let head = style.bold(&format!("host {}", h.name));
        let target = inline(&h.target.to_string()).into_owned();
        if let Some(e) = &h.error {
            let _ = writeln!(out, "{head} ({target}): {} {e}", style.red("cannot read:"));
            continue;
        }
        // what the host says of itself is shown on its line, never as lines or escapes of its own
        let _ = writeln!(
            out,
            "{head} ({target}): {}, {}",
            inline(h.computer_name.as_deref().unwrap_or("?")),
            inline(h.os.as_deref().unwrap_or("?"))
        );
        if h.state == HostLifecycle::Retired {
            let _ = writeln!(out, "  {}", retired_line(&h.products, style));
        }
        let cmid = inline(h.client_machine_id.as_deref().unwrap_or("unknown"));
        let rearms = h
            .remaining_rearm_count
            .map_or("unknown".to_string(), |n| n.to_string());
        let _ = writeln!(out, "  client machine ID {cmid}, rearms left {rearms}");
        if let Some(s) = &h.service {
            let _ = writeln!(out, "  service: {}", inline(&s.summary()));
            if s.restart_pending {
                let _ = writeln!(
                    out,
                    "  {}",
                    style
                        .yellow("! settings wait for a restart of the Software Protection service")
                );
            }
        }
        products(&mut out, &h.products, style);
    }
    out
}

/// The directory's block: where it was read and as whom, then one line per activation object
/// with the declared object it is for, then each declared object it lacks and what creates it.
/// Everything the directory holds is shown on its line.
pub fn render_directory(ad: &AdStatus, style: Style) -> String {
    let mut out = String::new();
    let head = style.bold("directory active_directory");
    let server = inline(&ad.server).into_owned();
    if let Some(e) = &ad.error {
        let _ = writeln!(
            out,
            "{head} (ldap://{server}): {} {e}",
            style.red("cannot read:")
        );
        return out;
    }
    let identity = inline(ad.identity.as_deref().unwrap_or("?")).into_owned();
    let dn = inline(ad.container_dn.as_deref().unwrap_or("?")).into_owned();
    let found = ad
        .found_by
        .as_ref()
        .map(|f| format!(", {}", inline(&f.to_string())))
        .unwrap_or_default();
    let _ = writeln!(out, "{head} (ldap://{server}{found}): bound as {identity}");
    if !ad.container {
        let _ = writeln!(
            out,
            "  {}",
            style.yellow(&format!("the container `{dn}` does not exist"))
        );
        return out;
    }
    let n = ad.objects.len();
    let _ = writeln!(
        out,
        "  {n} activation object{} in `{dn}`",
        if n == 1 { "" } else { "s" }
    );
    for o in &ad.objects {
        let declared = match &o.declared_as {
            Some(name) => format!("declared as `{}`", inline(name)),
            None => style.yellow("undeclared"),
        };
        let _ = writeln!(
            out,
            "  {}  key ending {}  SKU {}  {declared}",
            inline(&o.name),
            inline(&o.partial_key),
            inline(&o.sku_id)
        );
    }
    for m in &ad.missing {
        let (name, via, step) = (inline(&m.name), inline(&m.via), inline(&m.next_step));
        let state = style.yellow(m.state_text());
        let _ = writeln!(
            out,
            "  {name}  key ending {}  via {via}  {state}: {step}",
            inline(&m.partial_key)
        );
    }
    out
}

/// What a retired host is now: a KMS client (its Windows key's channel and last characters), or
/// still a KMS host until apply retires it.
fn retired_line(products: &[ProductStatus], style: Style) -> String {
    let hosts: Vec<String> = products
        .iter()
        .filter(|p| p.channel == Channel::KmsHost.to_string())
        .map(|p| p.product.to_string())
        .collect();
    if !hosts.is_empty() {
        let still = format!(
            "retired, but still a KMS host: {} hold{} a KMS host key (`kmsconf apply` retires it)",
            hosts.join(", "),
            if hosts.len() == 1 { "s" } else { "" }
        );
        return style.yellow(&still);
    }
    let windows = products.iter().find(|p| p.product == ProductId::Windows);
    match windows.and_then(|w| w.partial_key.as_deref().map(|k| (w, k))) {
        Some((w, key)) => format!(
            "retired: a KMS client, Windows holds a {} ending in {} ({})",
            w.channel,
            inline(key),
            w.license_status
        ),
        None => "retired: no KMS host key; Windows holds no key".to_string(),
    }
}

fn count_cell(p: &ProductStatus) -> String {
    let count = p
        .current_count
        .map_or("none".to_string(), |c| c.to_string());
    let server = p.required_count_server.unwrap_or(p.required_count);
    let n = p.current_count.unwrap_or(0);
    let verdict = if p.license_status != LicenseStatus::Licensed || p.channel != "KMS host key" {
        "not a KMS host"
    } else if n >= p.required_count {
        "activating"
    } else if n >= server {
        "servers only"
    } else {
        "below threshold"
    };
    format!("{count}/{} {verdict}", p.required_count)
}

/// What a KMS host key activates, what told its group, and whether a source confirms it.
fn activates_line(a: &KeyCoverage) -> String {
    let read_from = inline(&a.read_from);
    match (&a.name, a.clients.is_empty()) {
        (Some(name), false) => format!(
            "activates {} ({name}, from {read_from}; source: {}{}): {}",
            a.clients.len(),
            a.source.as_deref().map_or("none", source_title),
            if a.verified { "" } else { "; unverified" },
            a.clients.join(", ")
        ),
        _ => format!("activates: unknown: {read_from} names no KMS host key group kmsconf knows (model/data/coverage.toml)"),
    }
}

/// A source's title without its details: up to the quoted title (`Microsoft Learn, "..."`),
/// else up to the first parenthesis.
fn source_title(source: &str) -> &str {
    match source.find("\" (") {
        Some(end) => &source[..=end],
        None => source.split(" (").next().unwrap_or(source),
    }
}

fn products(out: &mut String, list: &[ProductStatus], style: Style) {
    if list.is_empty() {
        let _ = writeln!(out, "  no KMS host product declared or installed");
        return;
    }
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|p| {
            [
                p.product.to_string(),
                p.license_status.to_string(),
                inline(p.partial_key.as_deref().unwrap_or("-")).into_owned(),
                count_cell(p),
                p.requests.total.to_string(),
                p.requests.failed.to_string(),
            ]
        })
        .collect();
    let header = ["PRODUCT", "LICENSE", "KEY", "COUNT", "REQUESTS", "FAILED"];
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // padded by hand: `format!`'s width is a u16 and panics past 65,535, which a host's value
    // may be
    let line = |cells: [&str; 6]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))))
            .collect();
        format!("  {}", padded.join("  ").trim_end())
    };
    let _ = writeln!(out, "{}", style.dim(&line(header)));
    for (r, p) in rows.iter().zip(list) {
        let _ = writeln!(out, "{}", line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
        if let Some(a) = &p.activates {
            let _ = writeln!(out, "    {}", activates_line(a));
        }
        let q = &p.requests;
        if q.total > 0 {
            let _ = writeln!(
                out,
                "    requests by client status: {} unlicensed, {} licensed, {} initial grace, {} out of tolerance, {} non-genuine, {} notification",
                q.unlicensed, q.licensed, q.initial_grace, q.out_of_tolerance_grace, q.non_genuine_grace, q.notification
            );
        }
    }
}
