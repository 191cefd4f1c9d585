//! How the knowledge tables compiled in from `model/data/` are loaded: once, on first use, and a
//! table that does not read is a [`TableError`] naming its file, line and column, never an empty
//! table. The binary loads every table before it runs a command ([`crate::load_tables`]), so a
//! defective build stops with that message; each table's unit tests parse it, so a bad edit fails
//! `cargo test` first.

use std::path::Path;
use std::sync::OnceLock;

use kmsconf_engine::diagnostic::Location;

/// A knowledge table that does not read: where, and toml's or the table's own reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}\n  this table is compiled into kmsconf, so this build is defective: rebuild it from a source tree whose `cargo test -p kmsconf-model` passes")]
pub struct TableError {
    /// The table's file as the source tree names it (`model/data/windows.toml`) and the place in
    /// it; an error about the whole document points at its start.
    pub location: Location,
    pub message: String,
}

impl TableError {
    fn new(file: &str, text: &str, error: &toml::de::Error) -> Self {
        let offset = error.span().map_or(0, |span| span.start);
        Self {
            location: Location::at(Path::new(file), text, offset),
            message: error.message().trim_end().to_string(),
        }
    }
}

/// One compiled-in table: its file name, its text and how it reads (usually `toml::from_str`,
/// for some tables followed by a conversion), read at most once.
pub(crate) struct Table<T: 'static> {
    file: &'static str,
    text: &'static str,
    read: fn(&'static str) -> Result<T, toml::de::Error>,
    cell: OnceLock<Result<T, TableError>>,
}

impl<T> Table<T> {
    pub(crate) const fn new(
        file: &'static str,
        text: &'static str,
        read: fn(&'static str) -> Result<T, toml::de::Error>,
    ) -> Self {
        Self {
            file,
            text,
            read,
            cell: OnceLock::new(),
        }
    }

    /// The table, or why it does not read.
    pub(crate) fn load(&'static self) -> Result<&'static T, TableError> {
        self.cell
            .get_or_init(|| {
                (self.read)(self.text).map_err(|e| TableError::new(self.file, self.text, &e))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The table. The binary has called [`Table::load`] before anything else, so a table that
    /// does not read has already stopped it with a message; a library caller that skipped
    /// [`crate::load_tables`] gets that message as a panic rather than a table emptied without a
    /// word (a test meets it as a failure naming the file, line and column).
    pub(crate) fn get(&'static self) -> &'static T {
        match self.load() {
            Ok(table) => table,
            Err(e) => panic!("{e}"),
        }
    }
}

/// The serde default of a table row's flag that holds unless the row says otherwise (a fact is
/// `verified` until a row marks it `false`).
pub(crate) fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Row {
        id: String,
        source: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Rows {
        row: Vec<Row>,
    }

    static BAD: Table<Rows> = Table::new(
        "model/data/rows.toml",
        "# rows\n[[row]]\nid = \"a\"\nsource = \"s\"\n\n[[row]]\nid = \"b\"\n  sorce = \"s\"\n",
        toml::from_str,
    );

    static GOOD: Table<Rows> = Table::new(
        "model/data/rows.toml",
        "[[row]]\nid = \"a\"\nsource = \"s\"\n",
        toml::from_str,
    );

    #[test]
    fn a_bad_row_is_an_error_at_its_line_and_column_never_an_empty_table() {
        let e = BAD.load().expect_err("an unknown field");
        assert_eq!((e.location.line, e.location.column), (8, 3), "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with("model/data/rows.toml:8:3: unknown field `sorce`"),
            "{text}"
        );
        // the error is kept, not retried into something else
        assert_eq!(BAD.load().expect_err("again"), e);
        assert_eq!(GOOD.get().row.len(), 1);
    }

    #[test]
    #[should_panic(expected = "model/data/rows.toml:8:3")]
    fn a_caller_that_skipped_the_check_is_stopped_with_the_place() {
        let _ = BAD.get();
    }
}
