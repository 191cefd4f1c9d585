//! Where a dotted key too deep for the TOML reader starts: the reader refuses a key of more
//! than a few dozen parts ("recursion limit") without saying where it is, so it is found here,
//! in the parser's own events, to be reported at its line and column.

use toml_parser::parser::{parse_document, EventReceiver};
use toml_parser::{ErrorSink, Source, Span};

/// The start of the dotted key with the most parts in `source`, and how many parts it has; the
/// first of them where several have as many. `None` when no key is dotted.
pub(super) fn deepest_key(source: &str) -> Option<(usize, usize)> {
    let tokens = Source::new(source).lex().into_vec();
    let mut keys = Keys::default();
    parse_document(&tokens, &mut keys, &mut ());
    keys.deepest.filter(|(_, parts)| *parts > 1)
}

/// Follows keys through the parser's events: a key is simple keys joined by separators.
#[derive(Default)]
struct Keys {
    /// the key being read: its start and its parts so far
    current: Option<(usize, usize)>,
    /// whether the last key event was a separator, so the next simple key continues the key
    continues: bool,
    deepest: Option<(usize, usize)>,
}

impl EventReceiver for Keys {
    fn simple_key(
        &mut self,
        span: Span,
        _kind: Option<toml_parser::decoder::Encoding>,
        _error: &mut dyn ErrorSink,
    ) {
        self.current = match self.current {
            Some((start, parts)) if self.continues => Some((start, parts + 1)),
            _ => Some((span.start(), 1)),
        };
        self.continues = false;
        if let Some((start, parts)) = self.current {
            if self.deepest.is_none_or(|(_, most)| parts > most) {
                self.deepest = Some((start, parts));
            }
        }
    }

    fn key_sep(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.continues = true;
    }

    fn key_val_sep(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.end_key();
    }

    fn std_table_close(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.end_key();
    }

    fn array_table_close(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.end_key();
    }
}

impl Keys {
    fn end_key(&mut self) {
        self.current = None;
        self.continues = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deepest_dotted_key_is_found_at_its_start() {
        let deep = vec!["a"; 300].join(".");
        let source = format!("[hosts.kms01]\ntarget = \"lab:x\"\n\n  {deep} = 1\nb.c = 2\n");
        let start = source.find("a.a").expect("key");
        assert_eq!(deepest_key(&source), Some((start, 300)));
        assert_eq!(deepest_key("[t]\nx = 1\n"), None);
        // a header's parts count as well; spaces around the dots are allowed
        assert_eq!(deepest_key("[ a . b . c ]\n"), Some((2, 3)));
    }
}
