//! How a transport's process ended, and the last lines of what it wrote to stderr: what both
//! the SSH and the local transport report from.

/// How a program ended.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    /// The exit code; `None` when killed (by the deadline or a signal).
    pub status: Option<i32>,
    pub stderr: String,
    /// The deadline passed and the program was killed.
    pub timed_out: bool,
}

impl Finished {
    /// The last lines of stderr, for messages.
    pub fn stderr_tail(&self) -> String {
        tail(&self.stderr)
    }
}

/// The last lines of `text` that are not blank, joined with `; `.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(6)..].join("; ")
}
