//! Messages about a config file that point at a place in it: `FILE:LINE:COL: message`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A place in a source file, 1-based, as editors and compilers count.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The line and column of a byte offset in `source`; columns count characters.
    pub fn at(file: &Path, source: &str, offset: usize) -> Self {
        let offset = offset.min(source.len());
        let before = source.get(..offset).unwrap_or(source);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        Self {
            file: file.to_path_buf(),
            line,
            column,
        }
    }
}

/// Where each line of a source starts, so many places in one large file are found by a binary
/// search each instead of a scan from its start (which made validation quadratic in hosts).
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(source: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { starts }
    }

    /// The same place as [`Location::at`] gives, for `source` (the text this index was made of).
    pub fn location(&self, file: &Path, source: &str, offset: usize) -> Location {
        let offset = offset.min(source.len());
        let line = self.starts.partition_point(|start| *start <= offset);
        let line_start = self.starts[line.saturating_sub(1)];
        let column = source
            .get(line_start..offset)
            .map_or(0, |s| s.chars().count())
            + 1;
        Location {
            file: file.to_path_buf(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// How long a value a message quotes may be before it is cut.
const QUOTED_CHARS: usize = 60;

/// A value as a message quotes it: in backticks, and when long cut with its length said, so a
/// 10 MB value does not become a 10 MB message.
pub fn quoted(value: &str) -> String {
    match value.char_indices().nth(QUOTED_CHARS) {
        Some((end, _)) => format!(
            "`{}…` ({} characters)",
            value[..end].escape_debug(),
            value.chars().count()
        ),
        None => format!("`{}`", value.escape_debug()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One error or warning about a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub location: Location,
    pub message: String,
}

impl Diagnostic {
    pub fn error(location: Location, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            location,
            message: message.into(),
        }
    }

    pub fn warning(location: Location, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            location,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Error => write!(f, "{}: {}", self.location, self.message),
            Severity::Warning => write!(f, "{}: warning: {}", self.location, self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_index_finds_what_a_scan_finds() {
        let source = "a = 1\nbé = \"x\"\n\n[t]\nk = 2";
        let index = LineIndex::new(source);
        let file = Path::new("f.toml");
        for offset in 0..=source.len() + 2 {
            if source.is_char_boundary(offset.min(source.len())) {
                assert_eq!(
                    index.location(file, source, offset),
                    Location::at(file, source, offset),
                    "offset {offset}"
                );
            }
        }
    }

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let src = "a = 1\n키 = 2\n";
        let at = |o| Location::at(Path::new("f.toml"), src, o);
        assert_eq!((at(0).line, at(0).column), (1, 1));
        assert_eq!((at(6).line, at(6).column), (2, 1));
        // `=` after the three-byte Hangul character is the third character on the line
        assert_eq!((at(10).line, at(10).column), (2, 3));
        assert_eq!(at(10).to_string(), "f.toml:2:3");
    }

    #[test]
    fn offsets_past_the_end_are_clamped() {
        let l = Location::at(Path::new("f"), "ab", 99);
        assert_eq!((l.line, l.column), (1, 3));
    }
}
