//! The engine's one error type. Every variant carries the context a person needs to act on it.

use std::path::PathBuf;

/// Errors from loading plan files, ordering resources, reading secrets and writing files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read `{path}`: it is not a regular file: it is {kind}")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("cannot read `{path}`: it is over the {limit} limit of {}", .limit.what)]
    TooLarge {
        path: PathBuf,
        limit: crate::read::Limit,
    },
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("`{path}` is not a kmsconf plan file: {message}")]
    PlanFile { path: PathBuf, message: String },
    /// A saved plan whose content is not what was saved (or, with a plan key, not what was
    /// signed): it must not be shown as reviewed or applied.
    #[error("`{path}` was changed after it was saved: {message}")]
    PlanIntegrity { path: PathBuf, message: String },
    #[error("secret {what}: {message}")]
    Secret { what: String, message: String },
    #[error("cannot make an ID: the operating system's random source failed: {0}")]
    Random(String),
}
