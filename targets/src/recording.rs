//! Recordings of agent sessions: with `KMSCONF_RECORD=DIR` each host's session is written to
//! `DIR/NAME.jsonl` ([`Recorded`]), and a `replay:PATH` target answers from such a file
//! ([`ReplayShell`]). Both sit on the [`Channel`](crate::session::Channel) every transport
//! carries, so SSH, local PowerShell and WinRM sessions record and replay alike.
//!
//! A recording is JSON lines: a [`Header`], then one [`Event`] per line, each with a SHA-256
//! digest chained from the lines before it, so an edited, dropped or reordered line is refused.
//! It holds each request with its secrets replaced by their config references, and the host's
//! answers verbatim: host names and the host's own text, never a secret.

mod record;
mod replay;
#[cfg(test)]
mod tests;

pub use record::Recorded;
pub use replay::ReplayShell;

use serde::{Deserialize, Serialize};
use serde_json::json;

/// The `format` of the header line; a recording of another format is refused.
pub const FORMAT: &str = "kmsconf-recording/1";

/// The first line: what recorded the run, through what, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: String,
    /// The kmsconf version that recorded it.
    pub kmsconf: String,
    pub host: String,
    /// The target as the config writes it (`ssh://admin@kms01`); a WinRM password never is.
    pub transport: String,
    /// RFC 3339, UTC.
    pub started: String,
}

/// One step of a session, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// A session started (the transport's process, or a WinRM shell).
    Open,
    /// kmsconf sent its agent: only its size, the text is kmsconf's own.
    Agent { bytes: usize },
    /// A request, secrets replaced by their config references.
    Request(String),
    /// A line the host wrote, as it came.
    Answer(String),
    /// The host closed its output.
    Ended,
    /// No line came before the deadline.
    TimedOut,
    /// The host wrote a line longer than kmsconf reads (the cap in `output`); not kept.
    LineTooLong,
    /// The session was closed: how it ended, and what it wrote to stderr.
    Closed {
        exit_code: Option<i32>,
        stderr: String,
        killed: bool,
    },
}

/// One line after the header.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    event: Event,
    digest: String,
}

/// The digest the header starts the chain with.
fn header_digest(header: &Header) -> String {
    kmsconf_engine::seal::digest(&json!(header))
}

/// The digest of `event` following `previous`.
fn chained(previous: &str, event: &Event) -> String {
    kmsconf_engine::seal::digest(&json!([previous, event]))
}
