//! `kmsconf clients`: who asks each KMS host, from its event log; a table for people, `--json`
//! for scripts, OpenMetrics for node_exporter, and one self-contained HTML page.

use std::fmt::Write as _;
use std::process::ExitCode;

use kmsconf_app::clients::{self, Client, ClientsOutput, HostClients, Unnamed};
use kmsconf_model::clock;

use super::render::Style;
use super::terminal::inline;
use super::{output, session, CliError, ConfigArg};

#[derive(Debug, clap::Args)]
pub struct ClientsArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Print one JSON object: `{ "format_version", "since", "hosts": [...] }`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// How to print it: `openmetrics` for node_exporter's textfile collector, `html` for one
    /// self-contained page (charts, tables and the doctor's verdicts).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Human)]
    format: Format,
    /// Only this host (repeatable).
    #[arg(long = "host", value_name = "NAME")]
    hosts: Vec<String>,
    /// How far back to read the event log: `30d` is the window the KMS count keeps.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_window)]
    since: i64,
    /// The HTML page's doctor verdicts call a host idle when its newest request is older.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_window)]
    idle: i64,
}

/// The output formats of `clients`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people, in a terminal.
    Human,
    /// One JSON object (the same as `--json`).
    Json,
    /// OpenMetrics text for node_exporter's textfile collector, ending with `# EOF`.
    Openmetrics,
    /// One HTML page with no external assets.
    Html,
}

/// A positive duration such as `30d` or `24h`.
pub fn parse_window(text: &str) -> Result<i64, String> {
    match clock::parse_duration(text) {
        Ok(s) if s > 0 => Ok(s),
        Ok(_) => Err(format!("`{text}` is not a positive duration such as `30d`")),
        Err(e) => Err(e.to_string()),
    }
}

impl ClientsArgs {
    pub fn json(&self) -> bool {
        self.json || self.format == Format::Json
    }
}

pub fn run(args: ClientsArgs) -> Result<ExitCode, CliError> {
    let (config, connect) = session::read_only(&args.config.file)?;
    let now = clock::now();
    let since = now.saturating_sub(args.since);
    let parallelism = session::READ_PARALLELISM;
    let hosts = clients::run(&config, &args.hosts, &connect, parallelism, args.since)?;
    let unread = hosts.iter().any(|h| h.error.is_some());
    let unnamed = clients::unnamed(&hosts);
    match args.format {
        Format::Openmetrics => {
            output::emit(&super::openmetrics::clients(&hosts))?;
            if let Some(text) = unnamed_notice(&unnamed) {
                note!("{text}");
            }
        }
        Format::Html => output::emit(&super::report_html::page(
            &config,
            &hosts,
            since,
            now,
            args.idle,
            unnamed_notice(&unnamed).as_deref(),
        ))?,
        _ if args.json() => output::emit(&output::json(&ClientsOutput {
            format_version: clients::FORMAT_VERSION,
            since: clock::rfc3339(since),
            hosts,
            unnamed_activation_ids: unnamed.into_iter().map(|u| u.activation_id).collect(),
            error: None,
        }))?,
        _ => output::emit_text(&render(&hosts, Style::stdout()))?,
    }
    Ok(session::exit_status(unread))
}

/// The human report: per host its service, products against their threshold, what is wrong,
/// then one row per client.
pub fn render(hosts: &[HostClients], style: Style) -> String {
    let mut out = String::new();
    for (i, h) in hosts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let head = style.bold(&format!("host {}", h.host));
        if let Some(e) = &h.error {
            let _ = writeln!(
                out,
                "{head}: {} {}",
                style.red("cannot read:"),
                inline(&e.message)
            );
            continue;
        }
        let service = h
            .service
            .as_ref()
            .map_or("no sppsvc service".to_string(), |s| {
                let run = if s.running { "running" } else { "stopped" };
                format!("sppsvc {run} (start {})", inline(&s.start_mode))
            });
        let last = h.last_request.as_deref().unwrap_or("none");
        let _ = writeln!(
            out,
            "{head}: {service}; {} requests, last {last}",
            h.requests
        );
        for p in &h.products {
            let verdict = if p.meets_threshold {
                style.green("meets it")
            } else {
                style.yellow("below it")
            };
            let s = |n: u64| if n == 1 { "" } else { "s" };
            let _ = writeln!(
                out,
                "  {}: {} distinct client{} ({} name{}), threshold {}: {verdict}",
                p.product,
                p.distinct_clients,
                s(p.distinct_clients),
                p.distinct_names,
                s(p.distinct_names),
                p.threshold
            );
        }
        warnings(&mut out, h, style);
        table(&mut out, &h.clients, style);
    }
    if let Some(text) = unnamed_notice(&clients::unnamed(hosts)) {
        let (head, rest) = text.split_once('\n').unwrap_or((&text, ""));
        let _ = write!(out, "\n{}\n{rest}", style.yellow(&format!("! {head}")));
    }
    out
}

/// How many activation IDs to show in the notice; `--json` lists them all.
const UNNAMED_SHOWN: usize = 20;

/// Once per run: the activation IDs nothing names, as `[fleet.activation_ids]` lines to fill in,
/// each with its clients and one of their names (where `slmgr /dlv` tells what it is).
pub fn unnamed_notice(list: &[Unnamed]) -> Option<String> {
    let first = list.first()?;
    let plural = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut out = format!(
        "{} named nowhere, so {} clients show as product `unknown`: name {} in the config with its edition, an id of `kmsconf client-script --list-editions` (or a product id such as `office-2024` for a client of no listed edition); `slmgr /dlv` on a client shows its Activation ID and edition\n  [fleet.activation_ids]\n",
        if list.len() == 1 {
            format!("activation ID `{}` is", first.activation_id)
        } else {
            format!("{} activation IDs are", list.len())
        },
        if list.len() == 1 { "its" } else { "their" },
        if list.len() == 1 { "it" } else { "each" }
    );
    for u in list.iter().take(UNNAMED_SHOWN) {
        let _ = writeln!(
            out,
            "  \"{}\" = \"EDITION\"   # {}, e.g. {}",
            u.activation_id,
            plural(u.clients, "client"),
            inline(&u.example)
        );
    }
    if list.len() > UNNAMED_SHOWN {
        let _ = writeln!(
            out,
            "  # and {} more: `kmsconf clients --json` lists every one in `unnamed_activation_ids`",
            list.len() - UNNAMED_SHOWN
        );
    }
    Some(out)
}

fn warnings(out: &mut String, h: &HostClients, style: Style) {
    let mut warn = |text: String| {
        let _ = writeln!(out, "  {}", style.yellow(&format!("! {text}")));
    };
    for d in &h.duplicates {
        warn(format!(
            "duplicate CMID {} from {} names: {}",
            inline(&d.cmid),
            d.fqdns.len(),
            names(&d.fqdns, d.fqdns.len())
        ));
    }
    for u in &h.uncovered {
        warn(format!(
            "{} client(s) of {}, which no KMS host key of this host activates: {}",
            u.clients,
            u.product,
            names(&u.fqdns, u.clients as usize)
        ));
    }
    for d in &h.dns_failures {
        warn(format!(
            "DNS publishing failed at {} in {}: {} (event 12293)",
            d.at,
            inline(&d.domain),
            d.code
        ));
    }
    if h.rejected_events > 0 {
        let first = h.rejections.first().map(|r| inline(r).into_owned());
        warn(format!(
            "{} event(s) with data kmsconf cannot read were left out (first: {})",
            h.rejected_events,
            first.unwrap_or_default()
        ));
    }
    if h.truncated {
        warn("the log held more than kmsconf reads at once (20000 events or 4 MiB): older requests are missing".into());
    }
}

/// The first five of `total` names, escaped, and how many more.
fn names(list: &[String], total: usize) -> String {
    let shown: Vec<String> = list
        .iter()
        .take(5)
        .map(|n| inline(n).into_owned())
        .collect();
    let more = total.saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

fn table(out: &mut String, clients: &[Client], style: Style) {
    if clients.is_empty() {
        let _ = writeln!(out, "  no requests in the window");
        return;
    }
    let header = [
        "CMID",
        "FQDN",
        "PRODUCT",
        "EDITION",
        "VM",
        "LICENSE",
        "LAST REQUEST",
        "REQUESTS",
        "RESULT",
    ];
    let rows: Vec<[String; 9]> = clients
        .iter()
        .map(|c| {
            let mut cmid = inline(&c.cmid).into_owned();
            if c.duplicate {
                cmid.push_str(" (dup)");
            }
            [
                cmid,
                inline(&c.fqdn).into_owned(),
                c.product.clone().unwrap_or_else(|| "unknown".into())
                    + if c.uncovered { " (uncovered)" } else { "" },
                c.edition.clone().unwrap_or_else(|| "-".into()),
                if c.vm { "yes" } else { "no" }.into(),
                c.license_status.word().into(),
                c.last_request.clone(),
                c.requests.to_string(),
                c.last_result.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))))
            .collect();
        format!("  {}", padded.join("  ").trim_end())
    };
    let _ = writeln!(out, "{}", style.dim(&line(header.to_vec())));
    for r in &rows {
        let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
    }
}
