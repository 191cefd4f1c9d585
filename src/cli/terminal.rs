//! What reaches a terminal: text that came from outside (a host's stderr, a CIM property, a lock
//! record, a path in the config) may hold escape sequences that retitle the window, clear the
//! screen, make hyperlinks or move the cursor back over a line. Human output passes through
//! [`clean`] on its way out, and single values through [`inline`]; JSON output stays exact.
//! Both also redact every secret of the run ([`redact_run`]): a host that quotes a key, in any
//! message of any batch, does not get it printed.

use std::borrow::Cow;

use kmsconf_app::engine::redact_run;

/// `text` with every control character other than newline and tab shown as `\u{..}`. With
/// `keep_style`, the SGR sequences kmsconf's own [`super::render::Style`] writes (`ESC [ digits
/// m`) stay: they only colour, and a host that colours its own text gains nothing.
pub fn clean(text: &str, keep_style: bool) -> Cow<'_, str> {
    match redact_run(text) {
        Cow::Borrowed(text) => escape_controls(text, keep_style),
        Cow::Owned(text) => Cow::Owned(escape_controls(&text, keep_style).into_owned()),
    }
}

fn escape_controls(text: &str, keep_style: bool) -> Cow<'_, str> {
    if !text.chars().any(|c| unsafe_char(c, true)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '\x1b' && keep_style {
            if let Some(len) = sgr_len(rest) {
                out.push_str(&rest[..len]);
                rest = &rest[len..];
                continue;
            }
        }
        push_char(&mut out, c, true);
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

/// One value shown inside a line (a computer name, a partial key, a path): every control
/// character, newline and tab included, shown as `\u{..}`, so a value cannot start a line of its
/// own.
pub fn inline(text: &str) -> Cow<'_, str> {
    let text = redact_run(text);
    if !text.chars().any(|c| unsafe_char(c, false)) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        push_char(&mut out, c, false);
    }
    Cow::Owned(out)
}

fn unsafe_char(c: char, lines: bool) -> bool {
    c.is_control() && !(lines && (c == '\n' || c == '\t'))
        // bidirectional overrides and isolates reorder what follows them on screen
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_char(out: &mut String, c: char, lines: bool) {
    if unsafe_char(c, lines) {
        out.extend(c.escape_unicode());
    } else {
        out.push(c);
    }
}

/// The length of an SGR sequence at the start of `text` (`ESC [`, digits and `;`, `m`).
fn sgr_len(text: &str) -> Option<usize> {
    let body = text.strip_prefix("\x1b[")?;
    let params = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    (body.as_bytes().get(params) == Some(&b'm')).then_some(2 + params + 1)
}

/// Standard error for the log lines (`WARN ...`): each line written through [`clean`].
pub struct Stderr {
    keep_style: bool,
}

impl Stderr {
    pub fn new(keep_style: bool) -> Self {
        Self { keep_style }
    }
}

impl std::io::Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(clean(&text, self.keep_style).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_titles_screen_clears_and_carriage_returns() {
        let hostile = "a\x1b]0;owned\x07b\x1b[2Jc\rd\x1b]8;;http://x\x1b\\e\u{9b}f\u{202e}g";
        let shown = clean(hostile, true);
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert!(!shown.contains('\u{202e}'));
        assert_eq!(
            clean("one\n\ttwo\x1b[31mred\x1b[0m", true),
            "one\n\ttwo\x1b[31mred\x1b[0m"
        );
        assert_eq!(clean("\x1b[31m", false), "\\u{1b}[31m");
        assert_eq!(inline("a\r\nb"), "a\\u{d}\\u{a}b");
        assert!(matches!(inline("plain"), Cow::Borrowed(_)));
    }
}
