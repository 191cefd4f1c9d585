//! `validate --format github`: config diagnostics as GitHub Actions workflow commands
//! (`::error file=F,line=L,col=C::message`), which GitHub shows as annotations on the pull
//! request's changed lines. Escaped as GitHub's toolkit does (`%`, CR and LF everywhere, `:` and
//! `,` in properties too).

use std::path::Path;

use kmsconf_app::engine::{Diagnostic, Severity};
use kmsconf_model::config::Config;

/// The output formats of `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `FILE:LINE:COL: message` on stderr, each with the line of the file and a caret.
    Human,
    /// GitHub Actions `::error` and `::warning` workflow commands on stdout.
    Github,
}

/// Loads the config, printing its warnings, or its errors, as workflow commands; `None` when
/// it is not valid.
pub fn load_config(file: &Path) -> Option<Config> {
    match Config::load(file) {
        Ok(config) => {
            for w in &config.warnings {
                say!("{}", annotation(w));
            }
            Some(config)
        }
        Err(kmsconf_model::Error::Invalid(diagnostics)) => {
            for d in &diagnostics {
                say!("{}", annotation(d));
            }
            None
        }
        Err(e) => {
            say!(
                "::error file={}::{}",
                property(&file.display().to_string()),
                message(&e.to_string())
            );
            None
        }
    }
}

/// One diagnostic as a workflow command.
pub fn annotation(d: &Diagnostic) -> String {
    let command = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    format!(
        "::{command} file={},line={},col={}::{}",
        property(&d.location.file.display().to_string()),
        d.location.line,
        d.location.column,
        message(&d.message)
    )
}

/// A message: `%`, CR and LF escaped.
fn message(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A property value: as a message, and `:` and `,` too.
fn property(text: &str) -> String {
    message(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use kmsconf_app::engine::Location;

    use super::*;

    #[test]
    fn messages_and_properties_are_escaped_as_github_documents() {
        let at = Location {
            file: PathBuf::from("dir,a:b/100%.toml"),
            line: 3,
            column: 7,
        };
        let d = Diagnostic::warning(at, "50% of `a:b`,\r\nnext");
        assert_eq!(
            annotation(&d),
            "::warning file=dir%2Ca%3Ab/100%25.toml,line=3,col=7::50%25 of `a:b`,%0D%0Anext"
        );
    }
}
