//! Why a recording cannot answer for a host: it does not read as a recording, a line was
//! changed, or the run asks what the recorded run did not. It lives under `error`, below the
//! replay that returns it and the crate's error that wraps it.

/// What is wrong with a recording, or with the run replayed against it. `line` is the
/// recording's line number (the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read it: {0}")]
    Read(String),
    #[error("it is empty: a recording starts with its header line")]
    Empty,
    #[error("line 1 is not the header of a kmsconf recording ({reason}); record the run again with `KMSCONF_RECORD=DIR`")]
    Header { reason: String },
    #[error("line {line} is not a recorded event: {reason}")]
    Line { line: usize, reason: String },
    #[error("line {line} was changed after it was recorded (its digest does not follow from the lines before it): a recording is replayed as it was written, or not at all")]
    Digest { line: usize },
    #[error("the run {asked}, where the recording has {recorded} (line {line})")]
    OutOfStep {
        line: usize,
        asked: String,
        recorded: String,
    },
    #[error("request {id} differs from the recorded one (line {line}) first at `{at}`: recorded {recorded}, asked {asked}; a replay answers only what was recorded")]
    Differs {
        line: usize,
        id: u64,
        at: String,
        recorded: String,
        asked: String,
    },
    #[error("the recording ends after line {line}, where the run {asked}: it was cut short, or the recorded run did less")]
    Ended { line: usize, asked: String },
}
