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
    #[error("secret {what}: {message}")]
    Secret { what: String, message: String },
    #[error("cannot make an ID: the operating system's random source failed: {0}")]
    Random(String),
}
