//! The plan as a pull-request comment (`--format markdown`): a one-line verdict per host, the
//! changes in tables with their slmgr equivalents, long details folded in `<details>`, and a hard
//! size cap with an honest count of what was cut. Built only from the plan, which holds no
//! secret; the same plan always gives the same bytes.

use std::fmt::Write as _;
use std::path::Path;

use kmsconf_app::engine::Verb as _;
use kmsconf_app::failure::HostFailure;
use kmsconf_app::output::PlanSummary;
use kmsconf_model::Action;
use kmsconf_model::{KmsChange, KmsHostPlan, KmsPlan, PlanOp};

use super::render;

/// GitHub refuses comments over 65,536 characters. A character is at least one byte, so a cap
/// in bytes is safe; the margin leaves room for what a pipeline wraps around the summary.
pub const MAX_BYTES: usize = 60_000;
/// Values longer than this are shortened in the table and shown whole in a folded block.
const VALUE_CHARS: usize = 60;
/// The same for the slmgr (or netsh, reg) equivalent, which reviewers read most.
const EQUIVALENT_CHARS: usize = 100;
/// Above this many hosts, the ones without changes are folded out of the verdict table.
const UNFOLDED_HOSTS: usize = 20;
/// Kept free for closing an open block and for the cut notice.
const RESERVE: usize = 400;

/// The markdown summary of `plan`; lab targets relative to `base`.
pub fn plan(plan: &KmsPlan, base: &Path, failures: &[(String, HostFailure)]) -> String {
    plan_capped(plan, base, failures, MAX_BYTES)
}

fn plan_capped(
    plan: &KmsPlan,
    base: &Path,
    failures: &[(String, HostFailure)],
    limit: usize,
) -> String {
    let mut doc = Doc::new(limit);
    doc.push(&header(plan, failures), 0);
    verdicts(&mut doc, plan, base, failures);
    for host in &plan.hosts {
        if !host.changes.is_empty()
            || !host.notices.is_empty()
            || !kmsconf_app::surprises::of_host(host).is_empty()
        {
            host_section(&mut doc, host, base);
        }
    }
    for (name, message) in failures {
        let piece = format!(
            "#### {}: cannot plan\n\n{}\n",
            code(name, false),
            fenced(&message.message)
        );
        doc.push(&piece, 0);
    }
    if doc.cut {
        let hidden = PlanSummary::of(plan).total.saturating_sub(doc.shown);
        let unlisted = (plan.hosts.len() + failures.len()).saturating_sub(doc.hosts_listed);
        doc.out.push_str(&cut_notice(hidden, unlisted));
    }
    doc.out
}

/// The document being written, and what of the plan it has shown so far.
struct Doc {
    out: String,
    limit: usize,
    /// What closes the block being written (`</details>`): written even when the rest is cut.
    closer: Option<&'static str>,
    cut: bool,
    /// Changes shown as table rows.
    shown: usize,
    /// Hosts shown in the verdict tables.
    hosts_listed: usize,
}

impl Doc {
    fn new(limit: usize) -> Self {
        Self {
            out: String::new(),
            limit,
            closer: None,
            cut: false,
            shown: 0,
            hosts_listed: 0,
        }
    }

    /// Appends `piece`, which shows `changes` changes, if it fits under the cap. Once one piece
    /// does not fit nothing more is appended, so what is shown is a prefix of the whole.
    fn push(&mut self, piece: &str, changes: usize) -> bool {
        if self.cut {
            return false;
        }
        let closer = self.closer.map_or(0, str::len);
        if self.out.len() + piece.len() + closer + RESERVE > self.limit {
            self.cut = true;
            self.close();
            return false;
        }
        self.out.push_str(piece);
        self.shown += changes;
        true
    }

    fn open(&mut self, piece: &str, closer: &'static str) {
        if self.push(piece, 0) {
            self.closer = Some(closer);
        }
    }

    fn close(&mut self) {
        if let Some(closer) = self.closer.take() {
            self.out.push_str(closer);
        }
    }
}

fn header(plan: &KmsPlan, failures: &[(String, HostFailure)]) -> String {
    let mut out = format!(
        "### kmsconf plan for {}\n\n",
        code(&plan.config.display().to_string(), false)
    );
    let lines = render::summary(plan, failures);
    let _ = writeln!(out, "**{}**\n", text(&lines.join(" ")));
    if let Some(digest) = plan.digest() {
        // what `kmsconf apply PLANFILE` prints before it changes anything
        let _ = writeln!(out, "Plan digest: {}\n", code(&digest, false));
    }
    out
}

/// The verdict of one host in a few words.
fn verdict(host: &KmsHostPlan) -> String {
    let pending: Vec<String> = host
        .changes
        .iter()
        .filter_map(|c| match &c.operation {
            PlanOp::ShowInstallationId { product } => Some(product.to_string()),
            PlanOp::ShowActivationObjectInstallationId { name, .. } => {
                Some(format!("activation object `{name}`"))
            }
            _ => None,
        })
        .collect();
    let n = host.changes.len();
    let changes = format!("{n} change{}", if n == 1 { "" } else { "s" });
    match (n, pending.is_empty()) {
        (0, _) => "no changes".into(),
        (_, true) => changes,
        (n, false) if n == pending.len() => {
            format!("pending phone activation ({})", pending.join(", "))
        }
        (_, false) => format!(
            "{changes}, pending phone activation ({})",
            pending.join(", ")
        ),
    }
}

const VERDICT_HEAD: &str = "| host | target | verdict |\n|---|---|---|\n";

fn verdicts(doc: &mut Doc, plan: &KmsPlan, base: &Path, failures: &[(String, HostFailure)]) {
    let row = |host: &KmsHostPlan| {
        format!(
            "| {} | {} | {} |\n",
            code(&host.name, true),
            code(&host.target.relative_to(base), true),
            verdict(host)
        )
    };
    let fold = plan.hosts.len() + failures.len() > UNFOLDED_HOSTS;
    let (shown, folded): (Vec<&KmsHostPlan>, Vec<&KmsHostPlan>) = plan
        .hosts
        .iter()
        .partition(|h| !fold || !h.changes.is_empty());
    if !shown.is_empty() || !failures.is_empty() {
        doc.push(VERDICT_HEAD, 0);
        for host in shown {
            if doc.push(&row(host), 0) {
                doc.hosts_listed += 1;
            }
        }
        for (name, _) in failures {
            if doc.push(
                &format!("| {} | | **cannot plan** |\n", code(name, true)),
                0,
            ) {
                doc.hosts_listed += 1;
            }
        }
        doc.push("\n", 0);
    }
    if !folded.is_empty() {
        let n = folded.len();
        doc.open(
            &format!(
                "<details><summary>{n} host{} with no changes</summary>\n\n{VERDICT_HEAD}",
                if n == 1 { "" } else { "s" }
            ),
            "\n</details>\n\n",
        );
        for host in folded {
            if doc.push(&row(host), 0) {
                doc.hosts_listed += 1;
            }
        }
        doc.close();
    }
}

const CHANGES_HEAD: &str = "| action | resource | change | equivalent |\n|---|---|---|---|\n";

fn host_section(doc: &mut Doc, host: &KmsHostPlan, base: &Path) {
    let mut head = format!(
        "#### {} ({}): {}\n\n",
        code(&host.name, false),
        code(&host.target.relative_to(base), false),
        verdict(host)
    );
    for notice in &host.notices {
        let _ = writeln!(head, "- note: {}", text(notice));
    }
    let surprises = kmsconf_app::surprises::of_host(host);
    for s in &surprises {
        let _ = writeln!(
            head,
            "- **warning:** {}",
            text(&kmsconf_app::surprises::message(s))
        );
    }
    if !host.notices.is_empty() || !surprises.is_empty() {
        head.push('\n');
    }
    if !host.changes.is_empty() {
        head.push_str(CHANGES_HEAD);
    }
    doc.push(&head, 0);
    let mut folded = Vec::new();
    for c in &host.changes {
        let (row, long) = change_row(c);
        doc.push(&row, 1);
        if long {
            folded.push(c);
        }
    }
    if !host.changes.is_empty() {
        doc.push("\n", 0);
    }
    for c in folded {
        doc.push(&change_details(c), 0);
    }
}

/// A table row for one change, and whether anything in it was shortened (or left out) and
/// needs the folded block.
fn change_row(c: &KmsChange) -> (String, bool) {
    let mut long = false;
    let mut cell = |v: &serde_json::Value| {
        let (s, cut) = shorten(&render::value(v), VALUE_CHARS);
        long |= cut;
        code(&s, true)
    };
    let change = match c.action {
        Action::Create => cell(&c.after),
        Action::Delete => cell(&c.before),
        Action::Restart => String::new(),
        Action::Update | Action::Activate => {
            format!("{} → {}", cell(&c.before), cell(&c.after))
        }
    };
    let equivalent = match &c.equivalent {
        Some(eq) => {
            let (s, cut) = shorten(eq, EQUIVALENT_CHARS);
            long |= cut;
            code(&s, true)
        }
        None => String::new(),
    };
    let change = match (&c.note, c.action) {
        // a restart has no values: what it applies is the whole story
        (Some(note), Action::Restart) => {
            let (s, cut) = shorten(note, EQUIVALENT_CHARS);
            long |= cut;
            text(&s)
        }
        (Some(_), _) => {
            long = true;
            format!("{change} (see note)")
        }
        (None, _) => change,
    };
    let row = format!(
        "| {} | {} | {change} | {equivalent} |\n",
        c.action.as_str(),
        code(&c.address, true)
    );
    (row, long)
}

/// The whole of one change, folded.
fn change_details(c: &KmsChange) -> String {
    let mut out = format!(
        "<details><summary><code>{}</code> in full</summary>\n\n",
        html(&c.address)
    );
    if !matches!(c.action, Action::Create | Action::Restart) {
        let _ = writeln!(out, "- before: {}", code(&render::value(&c.before), false));
    }
    if !matches!(c.action, Action::Delete | Action::Restart) {
        let _ = writeln!(out, "- after: {}", code(&render::value(&c.after), false));
    }
    if let Some(eq) = &c.equivalent {
        let _ = writeln!(out, "- equivalent: {}", code(eq, false));
    }
    if let Some(note) = &c.note {
        let _ = writeln!(out, "- note: {}", text(note));
    }
    out.push_str("\n</details>\n\n");
    out
}

fn cut_notice(hidden: usize, unlisted: usize) -> String {
    let what = match (hidden, unlisted) {
        (0, 0) => "the rest of the details".to_string(),
        (h, 0) => format!("{h} more change{}", if h == 1 { "" } else { "s" }),
        (h, u) => format!(
            "{h} more change{} and {u} more host verdict{}",
            if h == 1 { "" } else { "s" },
            if u == 1 { "" } else { "s" }
        ),
    };
    format!(
        "\n**… {what} in the plan artifact.** This summary stops here to stay under the size limit of a pull-request comment; `kmsconf show PLANFILE` prints the whole plan.\n"
    )
}

/// `s` cut to `max` characters (with `…`), and whether it was cut.
fn shorten(s: &str, max: usize) -> (String, bool) {
    if s.chars().count() <= max {
        return (s.to_string(), false);
    }
    let mut short: String = s.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    (short, true)
}

/// An inline code span that survives any content: one line, a fence longer than any run of
/// backticks inside, and `|` escaped where it would end a table cell.
fn code(s: &str, in_table: bool) -> String {
    let mut s = s.replace(['\r', '\n'], " ");
    if in_table {
        s = s.replace('|', "\\|");
    }
    let fence = "`".repeat(longest_run(&s, '`') + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// Plain text on one line: characters markdown or HTML would act on are escaped, except inside
/// the backtick spans the messages use to mark values, where escapes would show as written (and
/// GitHub links nothing). Outside them a zero-width space keeps GitHub from turning what came
/// from outside into a live `@mention`, an `#123` reference or an autolinked URL.
fn text(s: &str) -> String {
    const BREAK: char = '\u{200b}';
    let mut out = String::with_capacity(s.len());
    let mut in_code = false;
    let balanced = s.matches('`').count().is_multiple_of(2);
    for (i, ch) in s.char_indices() {
        match ch {
            '\r' | '\n' => out.push(' '),
            '`' if balanced => {
                in_code = !in_code;
                out.push(ch);
            }
            '|' => out.push_str("\\|"),
            _ if in_code => out.push(ch),
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' => {
                out.push('\\');
                out.push(ch);
            }
            '@' | '#' => {
                if ch == '#' {
                    out.push('\\');
                }
                out.push(ch);
                out.push(BREAK);
            }
            ':' if s[i..].starts_with("://") => {
                out.push(ch);
                out.push(BREAK);
            }
            '.' if s
                .get(i.saturating_sub(3)..i)
                .is_some_and(|w| w.eq_ignore_ascii_case("www")) =>
            {
                out.push(BREAK);
                out.push(ch);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            _ => out.push(ch),
        }
    }
    out
}

/// `s` as text inside an HTML element on one line: a line break there (an activation object's
/// name from the directory can hold one) could end the HTML block and turn what follows into
/// markdown, mentions and links live.
fn html(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A fenced code block holding `s` as it is.
fn fenced(s: &str) -> String {
    let fence = "`".repeat((longest_run(s, '`') + 1).max(3));
    format!("{fence}text\n{}\n{fence}\n", s.trim_end())
}

fn longest_run(s: &str, ch: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        run = if c == ch { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_outside_mentions_references_and_links_nothing() {
        let shown =
            text("ask @octocat about #12 at https://evil.example/x or www.evil.example, `@kept`");
        assert!(!shown.contains("@octocat"), "{shown}");
        assert!(!shown.contains("#12"), "{shown}");
        assert!(!shown.contains("https://"), "{shown}");
        assert!(!shown.contains("www."), "{shown}");
        assert!(
            shown.ends_with("`@kept`"),
            "a code span is shown as written: {shown}"
        );
        assert_eq!(text("a ` b"), "a \\` b");
    }
    use kmsconf_model::config::{ProductId, TargetSpec};
    use kmsconf_model::HostState;
    use serde_json::json;

    fn change(address: &str, equivalent: &str) -> KmsChange {
        KmsChange {
            address: address.into(),
            action: Action::Update,
            before: json!(120),
            after: json!(60),
            equivalent: Some(equivalent.into()),
            depends_on: vec![],
            note: None,
            operation: PlanOp::RestartService,
        }
    }

    fn host(name: &str, changes: Vec<KmsChange>) -> KmsHostPlan {
        KmsHostPlan {
            name: name.into(),
            target: TargetSpec::Lab {
                path: format!("/srv/kms/lab/{name}.json").into(),
            },
            depends_on: vec![],
            created: false,
            observed: kmsconf_model::EntryState::KmsHost(HostState::fresh_windows_server(name)),
            changes,
            notices: vec![],
        }
    }

    fn plan_of(hosts: Vec<KmsHostPlan>) -> KmsPlan {
        KmsPlan::new("kmsconf.toml".into(), "/srv/kms".into(), hosts)
    }

    #[test]
    fn code_spans_survive_backticks_and_pipes() {
        assert_eq!(code("a|b", true), "`a\\|b`");
        assert_eq!(code("a|b", false), "`a|b`");
        assert_eq!(code("x`y", false), "``x`y``");
        assert_eq!(code("`y", false), "`` `y ``");
        assert_eq!(
            text("<confirmation ID> *x*"),
            "&lt;confirmation ID&gt; \\*x\\*"
        );
    }

    #[test]
    fn verdicts_name_pending_phone_activations() {
        let mut pending = change("products.office-2019.activation", "slmgr.vbs /dti");
        pending.operation = PlanOp::ShowInstallationId {
            product: ProductId::Office2019,
        };
        assert_eq!(verdict(&host("a", vec![])), "no changes");
        assert_eq!(verdict(&host("a", vec![change("x", "y")])), "1 change");
        assert_eq!(
            verdict(&host("a", vec![pending.clone()])),
            "pending phone activation (office-2019)"
        );
        assert_eq!(
            verdict(&host("a", vec![change("x", "y"), pending.clone()])),
            "2 changes, pending phone activation (office-2019)"
        );
        // an activation object waiting for its confirmation ID, on its `via` host
        let mut object = change(
            "activation_objects/WS CSVLK",
            "slmgr.vbs /ad-activation-get-iid",
        );
        object.operation = serde_json::from_value(json!({
            "op": "show_activation_object_installation_id",
            "name": "WS CSVLK",
            "key": { "source": { "env": "K" }, "declared_at": { "file": "kmsconf.toml", "line": 1, "column": 1 } },
            "partial": "6789B",
        }))
        .expect("a plan operation");
        assert_eq!(
            verdict(&host("a", vec![pending, object])),
            "pending phone activation (office-2019, activation object `WS CSVLK`)"
        );
    }

    #[test]
    fn a_long_plan_is_cut_under_the_cap_and_says_how_much_is_missing() {
        let hosts = (0..40)
            .map(|i| {
                let changes = (0..20)
                    .map(|j| change(&format!("service.setting{j}"), "slmgr.vbs /sai 60"))
                    .collect();
                host(&format!("kms{i:02}"), changes)
            })
            .collect();
        let plan = plan_of(hosts);
        let limit = 8_000;
        let out = plan_capped(&plan, Path::new("/srv/kms"), &[], limit);
        assert!(out.len() <= limit, "{} bytes", out.len());
        let rows = out.matches("| update |").count();
        let notice = format!("**… {} more changes in the plan artifact.**", 800 - rows);
        assert!(out.contains(&notice), "{notice} not in:\n{out}");
        let whole = plan_capped(&plan, Path::new("/srv/kms"), &[], usize::MAX);
        assert!(!whole.contains("more changes"));
        assert_eq!(whole.matches("| update |").count(), 800);
    }

    #[test]
    fn an_open_fold_is_closed_when_the_cap_cuts_into_it() {
        let hosts = (0..400)
            .map(|i| host(&format!("kms{i:03}"), vec![]))
            .collect();
        let out = plan_capped(&plan_of(hosts), Path::new("/srv/kms"), &[], 4_000);
        assert!(out.len() <= 4_000);
        assert_eq!(
            out.matches("<details>").count(),
            out.matches("</details>").count()
        );
        assert!(
            out.contains("host verdicts in the plan artifact.**"),
            "{out}"
        );
    }
}
