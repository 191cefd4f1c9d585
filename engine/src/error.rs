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
        limit: crate::limit::Limit,
    },
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("`{path}` is not a kmsconf plan file: {reason}")]
    PlanFile {
        path: PathBuf,
        reason: PlanFileError,
    },
    /// A saved plan whose content is not what was saved (or, with a plan key, not what was
    /// signed): it must not be shown as reviewed or applied.
    #[error("`{path}` was changed after it was saved: {reason}")]
    PlanIntegrity {
        path: PathBuf,
        reason: IntegrityError,
    },
    #[error("secret {what}: {message}")]
    Secret { what: String, message: String },
    /// A secret too short to be redacted safely (see [`crate::secret::MIN_CHARS`]).
    #[error("secret {what}: {message}")]
    SecretTooShort { what: String, message: String },
    #[error("cannot make an ID: the operating system's random source failed: {0}")]
    Random(String),
}

/// Why a file is not a plan this kmsconf reads, or a plan cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("cannot encode the plan: {0}")]
    Encode(serde_json::Error),
    #[error("invalid JSON at line {line} column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("it has no `\"kind\": \"{0}\"`")]
    Kind(&'static str),
    /// `found` is the `format_version` as written (`-1`, `18446744073709551616`, `"3"`).
    #[error(
        "it has format version {found}; this kmsconf reads version {supported}: make a new plan"
    )]
    Version { found: String, supported: u32 },
    /// `written` is the number as the file writes it.
    #[error("its `format_version` {written} is out of range (a version is a whole number from 0 to 4294967295); this kmsconf reads version {supported}: make a new plan")]
    VersionOutOfRange { written: String, supported: u32 },
    #[error("it has no `format_version`")]
    NoVersion,
    #[error("malformed plan: {0}")]
    Malformed(serde_json::Error),
    #[error("host `{0}` is listed twice")]
    HostTwice(String),
    #[error("host `{host}` depends on `{dependency}`, which is not a host of the plan")]
    UnknownHost { host: String, dependency: String },
    #[error("host `{host}` has the change `{address}` twice")]
    ChangeTwice { host: String, address: String },
    #[error("change `{address}` of host `{host}` depends on `{dependency}`, which is not a change of that host")]
    UnknownChange {
        host: String,
        address: String,
        dependency: String,
    },
    #[error("dependency cycle between hosts: {}", .0.join(" -> "))]
    HostCycle(Vec<String>),
    #[error("dependency cycle between changes of host `{host}`: {}", .cycle.join(" -> "))]
    ChangeCycle { host: String, cycle: Vec<String> },
}

/// Why a plan file's content is not what was saved (or signed).
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    #[error("it is not a JSON object")]
    NotAnObject,
    #[error("it has no `digest`; make the plan again with this kmsconf")]
    NoDigest,
    #[error("its content hashes to `{computed}`, not to its recorded digest `{recorded}`; make a new plan and review it")]
    Digest { computed: String, recorded: String },
    #[error("it has no `hmac`, but a plan key was given: only a plan made with the same key is accepted")]
    NoHmac,
    #[error("its `hmac` does not match the plan key: it was changed, or made with another key")]
    Hmac,
    /// The domain's own check of the content failed (a change that does not show what its
    /// operation does).
    #[error("{0}")]
    Content(String),
}
