//! Source excerpts under config messages, as `cargo` and `taplo` show them: the line of the file
//! with a caret under the spot, drawn by `annotate-snippets`. The `FILE:LINE:COL: message` line
//! above stays as it was (CI logs and editors parse it); the excerpt is for people.
//!
//! Not for: machine output. Values of secret keys in the shown line are masked, since a literal
//! secret is exactly what a warning points at.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use kmsconf_app::engine::{Diagnostic, Location, Severity};

use super::render::Style;

/// Config keys whose string value is a secret, masked in excerpts.
const SECRET_KEYS: [&str; 4] = ["host_key", "confirmation_id", "secret", "password"];

/// The files excerpts are taken from, each read and split into lines once: a fleet's config with
/// a message on each of 40,000 hosts is read once, not once a message.
#[derive(Default)]
pub struct Excerpts {
    /// each file's text and where its lines start; `None` for one that cannot be read
    files: HashMap<PathBuf, Option<(String, Vec<usize>)>>,
}

impl Excerpts {
    /// A diagnostic as a person reads it: its `FILE:LINE:COL: message` line, then the excerpt
    /// when the file can be read.
    pub fn diagnostic(&mut self, d: &Diagnostic, style: Style) -> String {
        let head = d.to_string();
        let (head, level) = match d.severity {
            Severity::Error => (head, Level::ERROR),
            Severity::Warning => (style.yellow(&head), Level::WARNING),
        };
        match self.excerpt(&d.location, level, style) {
            // a blank line after the excerpt, as cargo leaves one, so the next message stands apart
            Some(excerpt) => format!("{head}\n{excerpt}\n"),
            None => head,
        }
    }

    /// The excerpts of the places a runtime error names with `(declared at FILE:LINE:COL)`.
    pub fn declared_at(&mut self, message: &str, style: Style) -> Vec<String> {
        message
            .split("(declared at ")
            .skip(1)
            .filter_map(|rest| parse_location(rest.split(')').next()?))
            .filter_map(|at| self.excerpt(&at, Level::NOTE, style))
            .collect()
    }

    /// The text of line `at.line` of `at.file`, without its line ending.
    fn line(&mut self, at: &Location) -> Option<&str> {
        let file = self
            .files
            .entry(at.file.clone())
            .or_insert_with(|| {
                let source = std::fs::read_to_string(Path::new(&at.file)).ok()?;
                let starts = std::iter::once(0)
                    .chain(source.match_indices('\n').map(|(i, _)| i + 1))
                    .collect();
                Some((source, starts))
            })
            .as_ref()?;
        let (source, starts) = file;
        let start = *starts.get(at.line.checked_sub(1)?)?;
        // as `str::lines` splits: no line after a final newline, `\r\n` a line ending too
        let line = match starts.get(at.line) {
            Some(next) => source[start..next - 1]
                .strip_suffix('\r')
                .unwrap_or(&source[start..next - 1]),
            None if start < source.len() => &source[start..],
            None => return None,
        };
        Some(line)
    }

    /// The line `at` points into, with the token there underlined; `None` when the file cannot
    /// be read or has no such line.
    fn excerpt(&mut self, at: &Location, level: Level<'_>, style: Style) -> Option<String> {
        let line = mask_url_password(&mask_secrets(self.line(at)?));
        let start = line
            .char_indices()
            .nth(at.column.saturating_sub(1))
            .map_or(line.len(), |(i, _)| i);
        let span = start..start + token_len(&line[start..]);
        let report = [Group::with_level(level).element(
            Snippet::source(line.as_str())
                .line_start(at.line)
                .annotation(AnnotationKind::Primary.span(span)),
        )];
        let renderer = if style.enabled {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        Some(renderer.render(&report))
    }
}

/// `FILE:LINE:COL`, the file possibly holding colons itself.
fn parse_location(text: &str) -> Option<Location> {
    let mut parts = text.rsplitn(3, ':');
    let column = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    let file = parts.next().filter(|f| !f.is_empty())?;
    Some(Location {
        file: file.into(),
        line,
        column,
    })
}

/// The length in bytes of the TOML token `rest` starts with: a quoted string to its closing
/// quote, a table header to its bracket, else a bare word; at least one character (a caret at
/// the end of the line when there is nothing).
fn token_len(rest: &str) -> usize {
    let Some(first) = rest.chars().next() else {
        return 0;
    };
    let end = match first {
        '"' | '\'' => closing(rest, first),
        '{' => closing(rest, '}'),
        '[' if !rest.contains('=') => closing(rest, ']'),
        _ => rest
            .find(|c: char| c.is_whitespace() || ",=]}#".contains(c))
            .map(|i| i.max(first.len_utf8())),
    };
    end.unwrap_or_else(|| rest.trim_end().len().max(first.len_utf8()))
}

/// The end (exclusive) of the first `close` after the opening character, backslash escapes
/// skipped.
fn closing(rest: &str, close: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in rest.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' if close == '"' => escaped = true,
            c if c == close => return Some(i + c.len_utf8()),
            _ => {}
        }
    }
    None
}

/// `line` with the string value of every secret key replaced by as many `*`, so columns still
/// line up.
fn mask_secrets(line: &str) -> String {
    let mut out = line.to_string();
    for key in SECRET_KEYS {
        let mut from = 0;
        while let Some(found) = out[from..].find(key).map(|i| i + from) {
            from = found + key.len();
            let Some(value) = out[from..].trim_start().strip_prefix('=') else {
                continue;
            };
            let value = value.trim_start();
            let Some(quote) = value.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                continue;
            };
            let inner_start = out.len() - value.len() + 1;
            let inner_end = closing(value, quote).map_or(out.len(), |end| inner_start + end - 2);
            let masked = "*".repeat(out[inner_start..inner_end].chars().count());
            out.replace_range(inner_start..inner_end, &masked);
            from = inner_start + masked.len();
        }
    }
    out
}

/// `line` with the password of a URL's `user:password@` replaced by as many `*`: a target holding
/// one is refused, and its excerpt must not show what it refuses.
fn mask_url_password(line: &str) -> String {
    let Some(scheme_end) = line.find("://").map(|i| i + 3) else {
        return line.to_string();
    };
    let url = &line[scheme_end..];
    let url = &url[..url.find(['"', '\'']).unwrap_or(url.len())];
    let Some((userinfo, _)) = url.rsplit_once('@') else {
        return line.to_string();
    };
    let Some(colon) = userinfo.find(':') else {
        return line.to_string();
    };
    let (start, end) = (scheme_end + colon + 1, scheme_end + userinfo.len());
    let mut out = line.to_string();
    out.replace_range(start..end, &"*".repeat(line[start..end].chars().count()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_end_where_toml_says() {
        assert_eq!(token_len("prot = 1"), 4);
        assert_eq!(token_len("\"1688\"\n"), 6);
        assert_eq!(token_len("'a\"b' x"), 5);
        assert_eq!(token_len("\"a\\\"b\" x"), 6);
        assert_eq!(token_len("[hosts.kms01] # x"), 13);
        assert_eq!(token_len("70000"), 5);
        assert_eq!(token_len("{ env = \"K\" }"), 13);
        assert_eq!(token_len(""), 0);
    }

    #[test]
    fn secret_values_are_masked_with_their_length() {
        assert_eq!(
            mask_secrets("host_key = \"BCDFG-HJKMP\"   # x"),
            "host_key = \"***********\"   # x"
        );
        assert_eq!(
            mask_secrets("tsig = { name = \"k\", secret = 'c2VjcmV0' }"),
            "tsig = { name = \"k\", secret = '********' }"
        );
        assert_eq!(
            mask_secrets("confirmation_id = { env = \"CID\" }"),
            "confirmation_id = { env = \"CID\" }"
        );
        assert_eq!(
            mask_secrets("host_key = \"unclosed"),
            "host_key = \"********"
        );
        assert_eq!(mask_secrets("host_key = \"\""), "host_key = \"\"");
        assert_eq!(
            mask_secrets("password = \"s3cret\""),
            "password = \"******\""
        );
    }

    #[test]
    fn passwords_in_urls_are_masked_with_their_length() {
        assert_eq!(
            mask_url_password(r#"target = "winrm://CORP\\admin:p@ss@kms01:5985" # x"#),
            r#"target = "winrm://CORP\\admin:****@kms01:5985" # x"#
        );
        for unchanged in [
            r#"target = "winrm://admin@corp.example@kms01""#,
            r#"target = "ssh://[::1]:22""#,
            r#"target = "lab:a.json""#,
        ] {
            assert_eq!(mask_url_password(unchanged), unchanged);
        }
    }

    #[test]
    fn declared_at_finds_every_location() {
        let at = parse_location("C:/x/kmsconf.toml:4:12").expect("location");
        assert_eq!(
            (at.file.to_string_lossy().as_ref(), at.line, at.column),
            ("C:/x/kmsconf.toml", 4, 12)
        );
        assert!(parse_location("kmsconf.toml:x:1").is_none());
        assert!(Excerpts::default()
            .declared_at("no place here", Style { enabled: false })
            .is_empty());
    }

    #[test]
    fn a_file_is_read_once_and_its_lines_are_what_str_lines_gives() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("k.toml");
        let source = "a = 1\r\n\nb = 2\r\r\nlast\r";
        std::fs::write(&path, source).expect("write");
        let mut excerpts = Excerpts::default();
        for (i, want) in source.lines().map(Some).chain([None, None]).enumerate() {
            let at = Location {
                file: path.clone(),
                line: i + 1,
                column: 1,
            };
            assert_eq!(excerpts.line(&at), want, "line {}", i + 1);
        }
        // read once: the file's later content is not what is shown
        std::fs::write(&path, "changed\n").expect("write");
        let at = Location {
            file: path,
            line: 1,
            column: 1,
        };
        assert_eq!(excerpts.line(&at), Some("a = 1"));
    }
}
