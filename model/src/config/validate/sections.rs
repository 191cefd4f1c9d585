//! Where a config splits into parts that parse alone: a run of table headers with one owner,
//! `[hosts.NAME]` with its sub-tables or `[dns]` with its own. Parsing a part at a time, the
//! parser's tree holds one host, not the fleet (a whole 10,000-host tree is ~200 MiB). Only the
//! places are found here; [`super::validate`] decides whether the parts can stand for the whole.

use std::ops::Range;

use toml_parser::lexer::TokenKind;
use toml_parser::Source;

/// The byte ranges of `source`'s runs of headers that share an owner, in order; `None` when
/// keys come before the first header (the root table's), which only a whole parse reads.
///
/// A header is a `[` at the start of a line outside any array or inline table, as the lexer
/// sees it (so never inside a string or a comment). Owners are compared by the keys' text as
/// written: `"h1"` and `h1` are then two owners, and the caller, which sees the decoded keys,
/// finds one owner in two parts and parses the whole document instead.
pub(super) fn split(source: &str) -> Option<Vec<Range<usize>>> {
    let mut parts: Vec<Range<usize>> = Vec::new();
    let mut owner: Option<Vec<&str>> = None;
    let mut depth = 0usize;
    let mut line_start = true;
    // the current header's start and the keys read from it so far
    let mut header: Option<(usize, Vec<&str>)> = None;
    let tokens = Source::new(source).lex();
    for token in tokens {
        let span = token.span();
        let kind = token.kind();
        if let Some((start, keys)) = &mut header {
            match kind {
                TokenKind::Newline | TokenKind::Eof => {
                    let keys = std::mem::take(keys);
                    let start = *start;
                    header = None;
                    let named = owner_keys(keys);
                    if owner.as_ref() != Some(&named) {
                        if let Some(open) = parts.last_mut() {
                            open.end = start;
                        }
                        parts.push(start..source.len());
                        owner = Some(named);
                    }
                    line_start = true;
                    continue;
                }
                TokenKind::Atom | TokenKind::BasicString | TokenKind::LiteralString => {
                    keys.push(&source[span.start()..span.end()]);
                }
                _ => {}
            }
        } else {
            match kind {
                TokenKind::Whitespace | TokenKind::Comment | TokenKind::Eof => continue,
                TokenKind::Newline => {
                    line_start = true;
                    continue;
                }
                TokenKind::LeftSquareBracket if line_start && depth == 0 => {
                    header = Some((span.start(), Vec::new()));
                }
                _ if owner.is_none() => return None,
                TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => depth += 1,
                TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                    depth = depth.saturating_sub(1);
                }
                _ => {}
            }
        }
        line_start = false;
    }
    Some(parts)
}

/// The keys that name a header's owner: `hosts` and the host's name, or the first key alone.
fn owner_keys(mut keys: Vec<&str>) -> Vec<&str> {
    let len = if keys.first() == Some(&"hosts") { 2 } else { 1 };
    keys.truncate(len);
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(source: &str) -> Option<Vec<&str>> {
        split(source).map(|p| p.into_iter().map(|r| &source[r]).collect())
    }

    #[test]
    fn a_host_and_its_sub_tables_are_one_part() {
        let source = "# fleet\n[dns]\nserver = \"ns1\"\n[hosts.a]\ntarget = \"lab:a.json\"\n[hosts.a.service]\nport = 1\n\n[ hosts . b ]\nx = [\n[1],\n]\ns = \"\"\"\n[hosts.c]\n\"\"\"\n[hosts.b.firewall]\n";
        assert_eq!(
            parts(source).expect("parts"),
            [
                "[dns]\nserver = \"ns1\"\n",
                "[hosts.a]\ntarget = \"lab:a.json\"\n[hosts.a.service]\nport = 1\n\n",
                "[ hosts . b ]\nx = [\n[1],\n]\ns = \"\"\"\n[hosts.c]\n\"\"\"\n[hosts.b.firewall]\n",
            ]
        );
    }

    #[test]
    fn keys_of_the_root_table_need_a_whole_parse() {
        assert_eq!(parts("hosts.a.target = \"lab:a.json\"\n"), None);
        assert_eq!(parts("\u{feff}# only a comment\n\n"), Some(vec![]));
    }

    #[test]
    fn a_host_written_in_two_places_is_two_parts() {
        let source = "[hosts.a]\n[hosts.b]\n[hosts.a.service]";
        assert_eq!(
            parts(source).expect("parts"),
            ["[hosts.a]\n", "[hosts.b]\n", "[hosts.a.service]"]
        );
    }
}
