//! One connection to a host for a whole run: the transport's process (`ssh`, or `powershell.exe`
//! for `local`) started once, with its standard input kept open for requests and its standard
//! output read line by line as answers arrive. Closing the input ends the agent; the process is
//! then waited for, and killed if it does not end.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::powershell::Request;
use super::process::Finished;
use crate::output::{LineTooLong, Lines, Stderr};

/// How long a closed session may take to end before it is killed.
const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// How long the process's output may stay open after the process ended: a child it left behind
/// holding stdout or stderr open is not waited for.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How often a wait for output checks whether the process ended.
const POLL: Duration = Duration::from_millis(100);
/// Lines read ahead of the session: with [`crate::output::MAX_LINE`], what bounds the output held in
/// memory while nobody asks for it.
const READ_AHEAD: usize = 4;

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
    lines: Receiver<Result<String, LineTooLong>>,
    stderr: Arc<Mutex<Stderr>>,
    /// Closed when stderr has ended.
    stderr_open: Receiver<()>,
    /// When the process was first seen ended.
    exited: Option<Instant>,
}

/// What the next read gave.
pub enum Next {
    Line(String),
    /// The process closed its output: it ended or is ending.
    Ended,
    TimedOut,
    /// A line passed [`crate::output::MAX_LINE`] bytes: the session cannot be read any further.
    LineTooLong,
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
        let (tx, lines) = mpsc::sync_channel(READ_AHEAD);
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || read_lines(stdout, &tx));
        }
        let stderr = Arc::new(Mutex::new(Stderr::default()));
        let (open, stderr_open) = mpsc::channel::<()>();
        if let Some(source) = child.stderr.take() {
            let kept = Arc::clone(&stderr);
            std::thread::spawn(move || {
                read_stderr(source, &kept);
                drop(open);
            });
        }
        Ok(Self {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
            stderr_open,
            exited: None,
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

    /// Whether the process ended at least `EXIT_GRACE` ago.
    fn ended_a_while_ago(&mut self) -> bool {
        if self.exited.is_none() && matches!(self.child.try_wait(), Ok(Some(_))) {
            self.exited = Some(Instant::now());
        }
        self.exited.is_some_and(|t| t.elapsed() >= EXIT_GRACE)
    }
}

/// Reads stdout in lines of at most [`crate::output::MAX_LINE`] bytes, until it ends, a line is too
/// long, or the session stops listening.
fn read_lines(mut stdout: impl Read, tx: &SyncSender<Result<String, LineTooLong>>) {
    let mut lines = Lines::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stdout.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut listening = true;
        if let Err(e) = lines.push(&buf[..n], |l| listening &= tx.send(Ok(l)).is_ok()) {
            let _ = tx.send(Err(e));
            return;
        }
        if !listening {
            return;
        }
    }
    if let Some(last) = lines.finish() {
        let _ = tx.send(Ok(last));
    }
}

/// Reads stderr to its end, keeping its start (see [`Stderr`]).
fn read_stderr(mut source: impl Read, kept: &Mutex<Stderr>) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = source.read(&mut buf) {
        kept.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(&buf[..n]);
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
    /// Once the process has ended, its output is not waited for past [`EXIT_GRACE`].
    fn next(&mut self, deadline: Instant) -> Next {
        loop {
            let wait = deadline.saturating_duration_since(Instant::now()).min(POLL);
            match self.lines.recv_timeout(wait) {
                Ok(Ok(line)) => return Next::Line(line),
                Ok(Err(LineTooLong)) => return Next::LineTooLong,
                Err(RecvTimeoutError::Disconnected) => return Next::Ended,
                Err(RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                    return Next::TimedOut
                }
                Err(RecvTimeoutError::Timeout) if self.ended_a_while_ago() => return Next::Ended,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Ends the session: closes its input (the agent ends at the end of its input) and waits for
    /// the process, killing it at once when `kill`, or after a grace period. Returns how it
    /// ended, with the start of what it wrote to stderr: a child the process left holding stderr
    /// open is waited for [`EXIT_GRACE`] at most.
    fn close(mut self: Box<Self>, kill: bool) -> Finished {
        self.stdin = None;
        let status = if kill { None } else { self.wait(CLOSE_GRACE) };
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = self.stderr_open.recv_timeout(EXIT_GRACE);
        let stderr = self
            .stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .text();
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
