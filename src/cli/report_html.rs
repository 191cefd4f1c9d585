//! `kmsconf clients --format html`: one self-contained page (inline CSS and SVG, no script, no
//! external asset). Per host: the event-log verdicts of `doctor`, per product the count against
//! the threshold day by day as an SVG chart (one point per day), and the clients table with
//! duplicate CMIDs and uncovered clients highlighted. Every text from a host is HTML-escaped.

use std::fmt::Write as _;

use kmsconf_app::clients::{HostClients, ProductClients};
use kmsconf_app::doctor::{self, Check};
use kmsconf_model::clock;
use kmsconf_model::config::Config;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;font-size:.9em}\
tr.dup td{background:#fde2e2}tr.uncovered td{background:#fff3cd}\
.ok{color:#1a7f37}.warning{color:#9a6700}.failed{color:#cf222e}\
svg{background:#fafafa;border:1px solid #ddd}.count{fill:none;stroke:#0969da;stroke-width:2}\
.threshold{stroke:#cf222e;stroke-dasharray:4 3}.point{fill:#0969da}text{font-size:11px}";

/// HTML text: `& < > " '` escaped, control characters dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Lines of text for a `<pre>`: each line escaped, the line breaks kept.
fn escape_lines(text: &str) -> String {
    text.lines().map(escape).collect::<Vec<_>>().join("\n")
}

/// The whole page; `unnamed`: the notice of the activation IDs nothing names, if any.
pub fn page(
    config: &Config,
    hosts: &[HostClients],
    since: i64,
    now: i64,
    idle: i64,
    unnamed: Option<&str>,
) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>kmsconf clients</title><style>{STYLE}</style></head><body>\n<h1>KMS clients</h1>\n<p>From {} to {} (kmsconf {}).</p>\n",
        clock::rfc3339(since),
        clock::rfc3339(now),
        env!("CARGO_PKG_VERSION")
    );
    if let Some(text) = unnamed {
        let (head, rest) = text.split_once('\n').unwrap_or((text, ""));
        let _ = writeln!(
            out,
            "<section class=\"unnamed\"><p class=\"warning\">{}</p><pre>{}</pre></section>",
            escape(head),
            escape_lines(rest)
        );
    }
    for h in hosts {
        let managed = config.hosts.get(&h.host).is_some_and(|c| c.dns.is_some());
        host(&mut out, h, &doctor::check_events(h, idle, managed));
    }
    out.push_str("</body></html>\n");
    out
}

fn host(out: &mut String, h: &HostClients, checks: &[Check]) {
    let _ = writeln!(
        out,
        "<section class=\"host\"><h2>host {}</h2>",
        escape(&h.host)
    );
    if let Some(e) = &h.error {
        let _ = writeln!(
            out,
            "<p class=\"failed\">cannot read: {}</p></section>",
            escape(&e.message)
        );
        return;
    }
    let _ = writeln!(
        out,
        "<p>{} requests in the window, the newest at {}.</p>",
        h.requests,
        escape(h.last_request.as_deref().unwrap_or("none"))
    );
    verdicts(out, checks);
    for p in &h.products {
        let _ = writeln!(
            out,
            "<h3>{}: {} distinct clients, threshold {}</h3>",
            escape(&p.name),
            p.distinct_clients,
            p.threshold
        );
        chart(out, p);
    }
    clients_table(out, h);
    out.push_str("</section>\n");
}

fn verdicts(out: &mut String, checks: &[Check]) {
    out.push_str("<table class=\"verdicts\"><tr><th>check</th><th>verdict</th><th>detail</th><th>fix</th></tr>\n");
    for c in checks {
        let word = c.status.word();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"{word}\">{word}</td><td>{}</td><td>{}</td></tr>",
            c.check,
            escape(&c.detail),
            escape(c.fix.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</table>\n");
}

/// The count day by day (one point per day) and the threshold, as an inline SVG.
fn chart(out: &mut String, p: &ProductClients) {
    const W: f64 = 640.0;
    const H: f64 = 200.0;
    const PAD: f64 = 30.0;
    let days = p.daily.len().max(1);
    let top = p
        .daily
        .iter()
        .map(|d| d.count)
        .max()
        .unwrap_or(0)
        .max(u64::from(p.threshold))
        .max(1) as f64;
    let x = |i: usize| PAD + (W - 2.0 * PAD) * i as f64 / (days.saturating_sub(1).max(1)) as f64;
    let y = |v: f64| H - PAD - (H - 2.0 * PAD) * v / top;
    let _ = write!(
        out,
        "<svg class=\"chart\" role=\"img\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\"><title>{} count against its threshold, per day</title>",
        escape(&p.product)
    );
    let line: Vec<String> = p
        .daily
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{:.1},{:.1}", x(i), y(d.count as f64)))
        .collect();
    let ty = y(f64::from(p.threshold));
    let _ = write!(
        out,
        "<line class=\"threshold\" x1=\"{PAD}\" x2=\"{}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\"/><text x=\"{}\" y=\"{:.1}\">threshold {}</text><polyline class=\"count\" points=\"{}\"/>",
        W - PAD,
        W - PAD - 70.0,
        ty - 4.0,
        p.threshold,
        line.join(" ")
    );
    for (i, d) in p.daily.iter().enumerate() {
        let _ = write!(
            out,
            "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\"><title>{}: count {}, {} requests</title></circle>",
            x(i),
            y(d.count as f64),
            escape(&d.day),
            d.count,
            d.requests
        );
    }
    if let (Some(first), Some(last)) = (p.daily.first(), p.daily.last()) {
        let _ = write!(
            out,
            "<text x=\"{PAD}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\">{}</text>",
            H - 8.0,
            escape(&first.day),
            W - PAD - 60.0,
            H - 8.0,
            escape(&last.day)
        );
    }
    out.push_str("</svg>\n");
}

fn clients_table(out: &mut String, h: &HostClients) {
    out.push_str("<table class=\"clients\"><tr><th>CMID</th><th>FQDN</th><th>product</th><th>edition</th><th>VM</th><th>license</th><th>last request</th><th>requests</th><th>last result</th></tr>\n");
    for c in &h.clients {
        let class = match (c.duplicate, c.uncovered) {
            (true, _) => " class=\"dup\"",
            (false, true) => " class=\"uncovered\"",
            _ => "",
        };
        let _ = writeln!(
            out,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.cmid),
            escape(&c.fqdn),
            escape(c.product.as_deref().unwrap_or("unknown")),
            escape(c.edition.as_deref().unwrap_or("-")),
            if c.vm { "yes" } else { "no" },
            c.license_status.word(),
            escape(&c.last_request),
            c.requests,
            escape(&c.last_result)
        );
    }
    out.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn host_text_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script>&\u{1b}[2J\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;[2J&quot;"
        );
    }
}
