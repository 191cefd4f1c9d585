//! Human output: the plan as a reviewer reads it, and the apply report. Colour only on a
//! terminal and never with `NO_COLOR` (anstyle writes the codes); everything reads the same
//! without it.

use std::fmt::Write;
use std::io::IsTerminal;
use std::path::Path;

use anstyle::AnsiColor;
use kmsconf_app::engine::ChangeStatus;
use kmsconf_app::engine::Verb as _;
use kmsconf_app::failure::HostFailure;
use kmsconf_app::output::PlanSummary;
use kmsconf_app::session::HostResult;
use kmsconf_model::Action;
use kmsconf_model::{KmsChange, KmsPlan};
use serde_json::Value;

use super::env;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub enabled: bool,
}

impl Style {
    fn for_stream(is_tty: bool) -> Self {
        let no_color = std::env::var_os(env::NO_COLOR).is_some_and(|v| !v.is_empty());
        Self {
            enabled: is_tty && !no_color,
        }
    }
    pub fn stdout() -> Self {
        Self::for_stream(std::io::stdout().is_terminal())
    }
    pub fn stderr() -> Self {
        Self::for_stream(std::io::stderr().is_terminal())
    }
    #[cfg(test)]
    pub fn plain() -> Self {
        Self { enabled: false }
    }
    fn paint(&self, style: anstyle::Style, text: &str) -> String {
        if self.enabled {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }
    fn colour(&self, colour: AnsiColor, text: &str) -> String {
        self.paint(anstyle::Style::new().fg_color(Some(colour.into())), text)
    }
    pub fn red(&self, t: &str) -> String {
        self.colour(AnsiColor::Red, t)
    }
    pub fn green(&self, t: &str) -> String {
        self.colour(AnsiColor::Green, t)
    }
    pub fn yellow(&self, t: &str) -> String {
        self.colour(AnsiColor::Yellow, t)
    }
    pub fn cyan(&self, t: &str) -> String {
        self.colour(AnsiColor::Cyan, t)
    }
    pub fn bold(&self, t: &str) -> String {
        self.paint(anstyle::Style::new().bold(), t)
    }
    pub fn dim(&self, t: &str) -> String {
        self.paint(anstyle::Style::new().dimmed(), t)
    }
    fn action(&self, a: Action) -> String {
        let s = a.symbol().to_string();
        match a {
            Action::Create => self.green(&s),
            Action::Activate => self.cyan(&s),
            Action::Update | Action::Restart => self.yellow(&s),
            Action::Delete => self.red(&s),
        }
    }
}

/// A value as the plan shows it: strings quoted, tables `{ k = v }`, nothing as `(none)`.
pub fn value(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k} = {}", value(v)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        other => other.to_string(),
    }
}

fn change_line(out: &mut impl Write, c: &KmsChange, style: Style) {
    use super::terminal::inline;
    // an address, its slmgr equivalent and its note may hold a name from outside (an
    // activation object's, read from the directory): each stays on its own line
    let address = inline(&c.address);
    let head = match c.action {
        Action::Create => format!("{address}: {}", value(&c.after)),
        Action::Delete => format!("{address}: {}", value(&c.before)),
        Action::Restart => address.into_owned(),
        _ => format!("{address}: {} -> {}", value(&c.before), value(&c.after)),
    };
    let verb = match c.action {
        Action::Activate => " (activate)",
        Action::Restart => " (restart)",
        _ => "",
    };
    let _ = writeln!(out, "  {} {head}{verb}", style.action(c.action));
    if let Some(eq) = &c.equivalent {
        let _ = writeln!(out, "      {}", style.dim(&format!("# {}", inline(eq))));
    }
    if let Some(note) = &c.note {
        let _ = writeln!(
            out,
            "      {}",
            style.yellow(&format!("! {}", inline(note)))
        );
    }
}

/// The human plan, written to `out` as it is rendered: a 10,000-host plan is tens of megabytes.
pub fn plan(
    out: &mut impl Write,
    plan: &KmsPlan,
    base: &Path,
    failures: &[(String, HostFailure)],
    style: Style,
) {
    for host in &plan.hosts {
        let name = style.bold(&format!("host {}", host.name));
        let t = super::terminal::inline(&host.target.relative_to(base)).into_owned();
        if host.changes.is_empty() {
            let _ = writeln!(out, "{name} ({t}): no changes");
        } else {
            let n = host.changes.len();
            let _ = writeln!(
                out,
                "{name} ({t}): {n} change{}",
                if n == 1 { "" } else { "s" }
            );
        }
        for notice in &host.notices {
            let notice = super::terminal::inline(notice);
            let _ = writeln!(out, "  {}", style.yellow(&format!("note: {notice}")));
        }
        for s in kmsconf_app::surprises::of_host(host) {
            let text = kmsconf_app::surprises::message(&s);
            let text = super::terminal::inline(&text);
            let _ = writeln!(out, "  {}", style.yellow(&format!("warning: {text}")));
        }
        for c in &host.changes {
            change_line(out, c, style);
        }
        let _ = out.write_char('\n');
    }
    for (host, e) in failures {
        let _ = writeln!(
            out,
            "{} {}\n",
            style.red(&format!("host {host}: cannot plan:")),
            e
        );
    }
    for line in summary(plan, failures) {
        let _ = writeln!(out, "{line}");
    }
}

/// The closing lines of a plan: what it does in numbers, or that nothing changes.
pub fn summary(plan: &KmsPlan, failures: &[(String, HostFailure)]) -> Vec<String> {
    let s = PlanSummary::of(plan);
    if s.total == 0 && failures.is_empty() {
        let verdict = match s.hosts {
            1 => "the host matches the configuration".to_string(),
            n => format!("all {n} hosts match the configuration"),
        };
        return vec![format!("No changes: {verdict}.")];
    }
    let hosts = s.hosts + failures.len();
    let mut lines = vec![format!(
        "Plan: {} to create, {} to update, {} to delete, {} to activate, {} to restart, on {} of {} host{}.",
        s.create, s.update, s.delete, s.activate, s.restart, s.hosts_with_changes, hosts,
        if hosts == 1 { "" } else { "s" }
    )];
    if !failures.is_empty() {
        let n = failures.len();
        lines.push(format!(
            "{} host{} could not be planned.",
            n,
            if n == 1 { "" } else { "s" }
        ));
    }
    lines
}

/// The result of apply for one host.
pub fn host_run(out: &mut String, name: &str, run: &HostResult, style: Style) {
    if !out.trim().is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "{}", style.bold(&format!("host {name}")));
    let run = match run {
        Ok(run) => run,
        Err(e) => {
            let _ = writeln!(out, "  {} {e}", style.red("failed"));
            return;
        }
    };
    if run.changes.is_empty() {
        let _ = writeln!(out, "  no changes");
    }
    for c in &run.changes {
        let (word, detail) = match &c.status {
            ChangeStatus::Applied { detail } => {
                (style.green("applied "), detail.clone().unwrap_or_default())
            }
            ChangeStatus::Pending { message } => (style.cyan("pending "), message.clone()),
            ChangeStatus::Failed { message, .. } => (style.red("failed  "), message.clone()),
            ChangeStatus::Skipped { reason } => {
                (style.yellow("skipped "), format!("because {reason}"))
            }
        };
        let mut lines = detail.lines();
        let first = lines.next().unwrap_or_default();
        let _ = writeln!(
            out,
            "  {word} {}{}{first}",
            super::terminal::inline(&c.address),
            if first.is_empty() { "" } else { ": " }
        );
        for more in lines {
            let _ = writeln!(out, "  {more}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_read_like_the_config() {
        assert_eq!(value(&json!(null)), "(none)");
        assert_eq!(value(&json!("a")), "\"a\"");
        assert_eq!(
            value(&json!({"enabled": true, "remote_addresses": ["10.0.0.0/8"]})),
            "{ enabled = true, remote_addresses = [\"10.0.0.0/8\"] }"
        );
        assert!(!Style::plain().red("x").contains('\x1b'));
    }

    #[test]
    fn colour_is_the_plain_sgr_codes() {
        let on = Style { enabled: true };
        assert_eq!(on.red("x"), "\x1b[31mx\x1b[0m");
        assert_eq!(on.green("x"), "\x1b[32mx\x1b[0m");
        assert_eq!(on.yellow("x"), "\x1b[33mx\x1b[0m");
        assert_eq!(on.cyan("x"), "\x1b[36mx\x1b[0m");
        assert_eq!(on.bold("x"), "\x1b[1mx\x1b[0m");
        assert_eq!(on.dim("x"), "\x1b[2mx\x1b[0m");
    }
}
