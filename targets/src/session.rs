//! One connection to a host for a whole run: the transport's process (`ssh`, or `powershell.exe`
//! for `local`) started once, with its standard input kept open for requests and its standard
//! output read line by line as answers arrive. Closing the input ends the agent; the process is
//! then waited for, and killed if it does not end.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::powershell::Request;
use super::process::Finished;

/// How long a closed session may take to end before it is killed.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// A host's agent session for a run, whatever carries it: a transport process (ssh, local
/// PowerShell) or a WinRM shell.
pub trait Channel: Send {
    /// Writes to the agent's input; `false` when it no longer reads (it ended).
    fn send(&mut self, bytes: &[u8]) -> bool;
    /// Sends one request (its line, secrets included); `false` when the agent no longer reads.
    /// A recording or a replay sees the request itself (see `crate::recording`).
    fn request(&mut self, request: &Request) -> bool {
        self.send(request.line().expose().as_bytes())
    }
    /// The next line of the agent's output, waiting until `deadline` at most.
    fn next(&mut self, deadline: Instant) -> Next;
    /// Ends the session (the agent ends at the end of its input), killing it at once when
    /// `kill`; returns how it ended.
    fn close(self: Box<Self>, kill: bool) -> Finished;
}

/// A session as the Windows target holds it.
pub type Session = Box<dyn Channel>;

/// A running transport process.
pub struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

/// What the next read gave.
pub enum Next {
    Line(String),
    /// The process closed its output: it ended or is ending.
    Ended,
    TimedOut,
}

impl Process {
    /// Starts `program args`. Only an error starting it is an `Err`.
    pub fn start(program: &str, args: &[String]) -> std::io::Result<Self> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (tx, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut buf = Vec::new();
                while matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
                    if tx.send(String::from_utf8_lossy(&buf).into_owned()).is_err() {
                        break;
                    }
                    buf.clear();
                }
            });
        }
        let stderr = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = e.read_to_end(&mut buf);
                buf
            })
        });
        Ok(Self {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
        })
    }

    /// The exit code once the process ends within `grace`; `None` if it does not (or was killed
    /// by a signal).
    fn wait(&mut self, grace: Duration) -> Option<i32> {
        let deadline = Instant::now() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.code(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => return None,
            }
        }
    }
}

impl Channel for Process {
    /// Writes to the process's input; `false` when it no longer reads (it ended).
    fn send(&mut self, bytes: &[u8]) -> bool {
        match self.stdin.as_mut() {
            Some(stdin) => stdin.write_all(bytes).and_then(|()| stdin.flush()).is_ok(),
            None => false,
        }
    }

    /// The next line of output, waiting until `deadline` at most.
    fn next(&mut self, deadline: Instant) -> Next {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(wait) {
            Ok(line) => Next::Line(line),
            Err(RecvTimeoutError::Disconnected) => Next::Ended,
            Err(RecvTimeoutError::Timeout) => Next::TimedOut,
        }
    }

    /// Ends the session: closes its input (the agent ends at the end of its input) and waits for
    /// the process, killing it at once when `kill`, or after a grace period. Returns how it
    /// ended, with what it wrote to stderr.
    fn close(mut self: Box<Self>, kill: bool) -> Finished {
        self.stdin = None;
        let status = if kill { None } else { self.wait(CLOSE_GRACE) };
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Finished {
            status,
            stderr,
            timed_out: kill,
            broken: None,
        }
    }
}

impl Drop for Process {
    /// A session dropped without [`Session::close`] is closed the same way.
    fn drop(&mut self) {
        self.stdin = None;
        if self.wait(CLOSE_GRACE).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
