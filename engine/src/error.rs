//! The engine's one error type. Every variant carries the context a person needs to act on it.

use std::path::PathBuf;

use crate::diagnostic::Diagnostic;

/// Errors from loading configs and plan files, ordering resources and writing files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The configuration has one or more errors; each carries its file, line and column.
    #[error("{}", render_diagnostics(.0))]
    Invalid(Vec<Diagnostic>),
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("`{path}` is not a kmsconf plan file: {message}")]
    PlanFile { path: PathBuf, message: String },
    #[error("secret {what}: {message}")]
    Secret { what: String, message: String },
}

fn render_diagnostics(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
