//! The agent session over WinRM: a `windows/shell/cmd` shell running `powershell.exe` with the
//! agent's fixed bootstrap, its standard input fed by Send and its output read by Receive, on
//! the one authenticated connection of [`super::client`]. The connection is not shared: a
//! Receive (a long poll) and a Send never overlap, so the session sends what is queued before
//! it waits for output.
//!
//! The shell is asked to end after an idle time bounded by the run's timeout (and never under
//! WinRM's one-minute minimum), so the shell of a run killed outright (and the agent and lock in
//! it) ends soon rather than after the service's own idle timeout; while the run is alive, a keepalive thread sends a short Receive whenever nothing
//! else has been sent for a quarter of that time (a Receive is a request like any other).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::client::{CallError, Client};
use super::wsman::{self, Expect, Reply};
use crate::error::winrm::Refusal;
use crate::output::{LineTooLong, Lines, Stderr};
use crate::powershell;
use crate::process::{Broken, Finished};
use crate::session::{Channel, Next};

/// The most standard input sent in one Send (base64 makes it 4/3 larger; the envelope stays
/// well under WinRM's default MaxEnvelopeSize of 150 KiB).
const SEND_CHUNK: usize = 64 * 1024;
/// How long a closing session may take to end before it is terminated.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Shells whose connection broke (shell ID, command ID): the next connection to the host removes
/// them, which ends the agent in each (and with it, on a lab host, the apply lock it holds), as
/// the end of an ssh connection ends its PowerShell.
pub type Lost = Arc<Mutex<Vec<(String, String)>>>;

/// A running agent in a WinRM shell, kept alive while the run lasts.
pub struct ShellSession {
    inner: Arc<Mutex<Inner>>,
    keepalive: Option<Keepalive>,
}

/// The thread that keeps the shell from idling out, and its stop flag.
struct Keepalive {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// The shell and the state of its agent.
struct Inner {
    /// When the last request went out: what the host's idle time counts from.
    last_request: Instant,
    lost: Lost,
    client: Option<Client>,
    shell_id: String,
    command_id: String,
    stdin: Vec<u8>,
    lines: VecDeque<String>,
    partial: Lines,
    /// A line passed [`crate::output::MAX_LINE`]: nothing more is read.
    too_long: bool,
    stderr: Stderr,
    exit_code: Option<i32>,
    done: bool,
    broken: Option<Broken>,
}

/// The least idle time WinRM gives a shell: "The minimum value is 60000. Setting this value
/// lower than 60000 will have no effect on the time-out" (Microsoft's WinRM configuration page,
/// `IdleTimeout`); PowerShell's own client never asks less (`MinimumIdleTimeout`). A shorter
/// request would not end the shell sooner, and the service may refuse it
/// (`ERROR_WINRS_IDLETIMEOUT_OUTOFBOUNDS`).
pub const MINIMUM_IDLE: Duration = Duration::from_secs(60);

/// The idle time asked for a shell: the run's `timeout`, at least twice the OperationTimeout
/// (so a host never counts a Receive's long poll against it), and at least [`MINIMUM_IDLE`].
pub fn idle_time(timeout: Duration, operation_timeout: Duration) -> Duration {
    timeout.max(operation_timeout * 2).max(MINIMUM_IDLE)
}

impl ShellSession {
    /// Removes the shells lost before, creates the shell (ended by the host once idle for
    /// `idle`) and starts the agent's PowerShell in it, then keeps it alive.
    pub fn start(client: Client, lost: Lost, idle: Duration) -> Result<Self, Broken> {
        let (inner, granted) = Inner::start(client, lost, idle)?;
        let inner = Arc::new(Mutex::new(inner));
        let stop = Arc::new(AtomicBool::new(false));
        let period = keepalive_period(idle, granted);
        let (weak, flag) = (Arc::downgrade(&inner), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("winrm-keepalive".into())
            .spawn(move || keep_alive(&weak, &flag, period))
            .ok();
        Ok(Self {
            inner,
            keepalive: thread.map(|thread| Keepalive { stop, thread }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops the keepalive thread and waits for it (at most one short Receive).
    fn stop_keepalive(&mut self) {
        if let Some(k) = self.keepalive.take() {
            k.stop.store(true, Ordering::Relaxed);
            k.thread.thread().unpark();
            let _ = k.thread.join();
        }
    }
}

/// How often an idle shell is touched: a quarter of its idle time, which is what was asked
/// unless the host granted less (its own `IdleTimeout` caps what a shell may ask).
fn keepalive_period(asked: Duration, granted: Option<Duration>) -> Duration {
    let idle = granted.map_or(asked, |g| g.min(asked));
    (idle / 4).max(Duration::from_secs(1))
}

/// Sends a short Receive whenever the session has sent nothing for `period`, until `stop` or
/// the session is gone; a session busy with a request of its own is not disturbed.
fn keep_alive(inner: &Weak<Mutex<Inner>>, stop: &AtomicBool, period: Duration) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::park_timeout(period);
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let Ok(mut session) = inner.try_lock() else {
            continue;
        };
        if session.last_request.elapsed() >= period && !session.done && session.client.is_some() {
            tracing::trace!("WinRM shell keepalive");
            session.receive(Instant::now() + Duration::from_secs(1));
        }
    }
}

impl Inner {
    /// Removes the shells lost before, then creates the shell and starts the agent's
    /// PowerShell in it; with the idle time the host granted, when its reply says.
    fn start(
        mut client: Client,
        lost: Lost,
        idle: Duration,
    ) -> Result<(Self, Option<Duration>), Broken> {
        let orphans = std::mem::take(&mut *lost.lock().unwrap_or_else(PoisonError::into_inner));
        for (shell_id, command_id) in orphans {
            terminate(&mut client, &shell_id, &command_id);
            delete(&mut client, &shell_id);
        }
        let endpoint = client.endpoint.clone();
        let id = message_id();
        let xml = wsman::create_shell(&endpoint, &id, idle);
        let (shell_id, granted) =
            match call(&mut client, Expect::Create, &xml, &id, "creating the shell")? {
                Reply::Created { shell_id, idle } => (shell_id, idle),
                other => return Err(unexpected("Create", &other)),
            };
        let id = message_id();
        let xml = wsman::command(
            &endpoint,
            &id,
            &shell_id,
            powershell::PROGRAM,
            &powershell::arguments(),
        );
        let command_id = match call(
            &mut client,
            Expect::Command,
            &xml,
            &id,
            "starting PowerShell",
        ) {
            Ok(Reply::CommandStarted { command_id }) => command_id,
            Ok(other) => return Err(unexpected("Command", &other)),
            Err(e) => {
                delete(&mut client, &shell_id);
                return Err(e);
            }
        };
        tracing::debug!(shell = %shell_id, command = %command_id, idle = idle.as_secs(), granted = ?granted, "WinRM shell started");
        let session = Self {
            last_request: Instant::now(),
            lost,
            client: Some(client),
            shell_id,
            command_id,
            stdin: Vec::new(),
            lines: VecDeque::new(),
            partial: Lines::default(),
            too_long: false,
            stderr: Stderr::default(),
            exit_code: None,
            done: false,
            broken: None,
        };
        Ok((session, granted))
    }

    /// Sends the queued standard input.
    fn flush(&mut self, end: bool) {
        while !self.stdin.is_empty() || end {
            let Some(client) = self.client.as_mut() else {
                return;
            };
            let n = self.stdin.len().min(SEND_CHUNK);
            let chunk: Vec<u8> = self.stdin.drain(..n).collect();
            let last = end && self.stdin.is_empty();
            let id = message_id();
            self.last_request = Instant::now();
            let xml = wsman::send(
                &client.endpoint,
                &id,
                &self.shell_id,
                &self.command_id,
                &chunk,
                last,
            );
            if let Err(e) = call(client, Expect::Send, &xml, &id, "sending requests") {
                self.lose(e);
                return;
            }
            if last {
                return;
            }
        }
    }

    /// One Receive: output, or nothing before the OperationTimeout.
    fn receive(&mut self, deadline: Instant) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let endpoint = client.endpoint_until(deadline);
        let id = message_id();
        self.last_request = Instant::now();
        let xml = wsman::receive(&endpoint, &id, &self.shell_id, &self.command_id);
        let answer = client.call(
            Expect::Receive,
            &xml,
            &id,
            endpoint.operation_timeout,
            "waiting for PowerShell's answers",
        );
        match answer {
            Ok(Reply::Received(r)) => {
                self.take_output(&r.stdout);
                self.stderr.push(&r.stderr);
                if r.done {
                    self.done = true;
                    self.exit_code = r.exit_code;
                    self.finish_partial();
                }
            }
            Ok(other) => self.lose(unexpected("Receive", &other)),
            Err(CallError::Fault(fault)) if fault.is_timed_out() => {}
            Err(CallError::Fault(fault)) => self.lose(Broken::Refused(Refusal::Fault {
                during: None,
                fault,
            })),
            Err(CallError::Broken(b)) => self.lose(b),
        }
    }

    fn take_output(&mut self, bytes: &[u8]) {
        let lines = &mut self.lines;
        if let Err(LineTooLong) = self.partial.push(bytes, |line| lines.push_back(line)) {
            self.too_long = true;
        }
    }

    fn finish_partial(&mut self) {
        if let Some(rest) = self.partial.finish() {
            self.lines.push_back(rest);
        }
    }

    /// The connection broke: nothing more is sent on it.
    fn lose(&mut self, broken: Broken) {
        tracing::debug!(?broken, "WinRM session lost");
        self.broken.get_or_insert(broken);
        if self.client.take().is_some() && !self.done {
            self.lost
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((self.shell_id.clone(), self.command_id.clone()));
        }
        self.finish_partial();
    }
}

impl Inner {
    fn send(&mut self, bytes: &[u8]) -> bool {
        if self.client.is_none() || self.done {
            return false;
        }
        self.stdin.extend_from_slice(bytes);
        true
    }

    fn next(&mut self, deadline: Instant) -> Next {
        loop {
            if let Some(line) = self.lines.pop_front() {
                return Next::Line(line);
            }
            if self.too_long {
                return Next::LineTooLong;
            }
            if self.done || self.client.is_none() {
                return Next::Ended;
            }
            if !self.stdin.is_empty() {
                self.flush(false);
                continue;
            }
            if Instant::now() >= deadline {
                return Next::TimedOut;
            }
            self.receive(deadline);
        }
    }

    fn close(&mut self, kill: bool) -> Finished {
        if !kill && !self.done && self.client.is_some() {
            // the agent ends at the end of its input
            self.flush(true);
            let deadline = Instant::now() + CLOSE_GRACE;
            while !self.done && self.client.is_some() && Instant::now() < deadline {
                self.receive(deadline);
            }
            self.lines.clear();
        }
        if let Some(mut client) = self.client.take() {
            if !self.done {
                terminate(&mut client, &self.shell_id, &self.command_id);
            }
            delete(&mut client, &self.shell_id);
        }
        Finished {
            status: if self.done { self.exit_code } else { None },
            stderr: self.stderr.text(),
            timed_out: kill,
            broken: self.broken.take(),
        }
    }
}

impl Channel for ShellSession {
    fn send(&mut self, bytes: &[u8]) -> bool {
        self.lock().send(bytes)
    }

    fn next(&mut self, deadline: Instant) -> Next {
        self.lock().next(deadline)
    }

    fn close(mut self: Box<Self>, kill: bool) -> Finished {
        self.stop_keepalive();
        let finished = self.lock().close(kill);
        finished
    }
}

impl Drop for ShellSession {
    fn drop(&mut self) {
        self.stop_keepalive();
    }
}

impl Drop for Inner {
    /// A session dropped without closing still removes its shell from the host.
    fn drop(&mut self) {
        if let Some(mut client) = self.client.take() {
            terminate(&mut client, &self.shell_id, &self.command_id);
            delete(&mut client, &self.shell_id);
        }
    }
}

/// A call whose fault is a failure too.
fn call(
    client: &mut Client,
    expect: Expect,
    xml: &str,
    id: &str,
    during: &str,
) -> Result<Reply, Broken> {
    let operation = client.endpoint.operation_timeout;
    client
        .call(expect, xml, id, operation, during)
        .map_err(|e| match e {
            CallError::Fault(fault) => Broken::Refused(Refusal::Fault {
                during: Some(during.to_string()),
                fault,
            }),
            CallError::Broken(b) => b,
        })
}

/// Stops the command (its process ends); a failure is left to the shell's deletion.
fn terminate(client: &mut Client, shell_id: &str, command_id: &str) {
    if !client.is_open() {
        return;
    }
    let id = message_id();
    let xml = wsman::signal_terminate(&client.endpoint, &id, shell_id, command_id);
    let _ = call(client, Expect::Signal, &xml, &id, "stopping PowerShell");
}

/// Deletes the shell; a failure only costs the host an idle shell until its timeout.
fn delete(client: &mut Client, shell_id: &str) {
    if !client.is_open() {
        return;
    }
    let id = message_id();
    let xml = wsman::delete_shell(&client.endpoint, &id, shell_id);
    if let Err(e) = call(client, Expect::Delete, &xml, &id, "deleting the shell") {
        tracing::warn!(error = ?e, "could not delete the WinRM shell; the host removes it when its idle timeout passes");
    }
}

/// A fresh WS-Addressing MessageID. Should the system's random source fail, a MessageID only
/// needs to be unique on this connection: the time and a counter make one.
fn message_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    wsman::message_id().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("uuid:{:08X}-0000-4000-8000-{:012X}", nanos as u32, n)
    })
}

fn unexpected(request: &'static str, reply: &Reply) -> Broken {
    Broken::Refused(Refusal::Unexpected {
        request,
        reply: reply.kind(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The run's timeout bounds the idle time, which never falls under twice the
    /// OperationTimeout nor under WinRM's one-minute minimum.
    #[test]
    fn the_idle_time_is_the_runs_timeout_within_winrms_bounds() {
        let s = Duration::from_secs;
        assert_eq!(idle_time(s(600), s(20)), s(600));
        assert_eq!(idle_time(s(100), s(60)), s(120));
        assert_eq!(idle_time(s(6), s(1)), MINIMUM_IDLE);
        assert_eq!(idle_time(s(30), s(20)), MINIMUM_IDLE);
        assert_eq!(idle_time(Duration::ZERO, Duration::ZERO), MINIMUM_IDLE);
    }

    /// The keepalive follows the idle time the host granted when it is less than asked.
    #[test]
    fn the_keepalive_touches_the_shell_within_the_granted_idle_time() {
        let s = Duration::from_secs;
        assert_eq!(keepalive_period(s(600), None), s(150));
        assert_eq!(keepalive_period(s(3600), Some(s(180))), s(45));
        assert_eq!(keepalive_period(s(600), Some(s(7200))), s(150));
        assert_eq!(keepalive_period(s(2), Some(s(2))), s(1));
    }
}
