//! Answering from a recording: [`ReplayShell`] is a transport whose sessions give back, step by
//! step, what the recorded host answered, as long as the run asks exactly what was recorded.
//! The first request that differs ends the session, and the error names where it differs.
//! The one exception is the apply lock: its holder record names the run (time, process, a
//! random ID), so the lock request matches whatever run holds it, and the unlock must name
//! that same run's lock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{chained, header_digest, Event, Header, Line, FORMAT};
use crate::error::ReplayError;
use crate::powershell::{Request, READY_LINE};
use crate::process::Finished;
use crate::session::{Channel, Next, Session};
use crate::windows::Transport;
use crate::Error;

/// A recording holds one host's agent output: a discovery answer under 1 MiB and short batch
/// answers, each line under the 8 MiB line cap; far larger is not one kmsconf wrote.
pub const RECORDING: kmsconf_engine::read::Limit = kmsconf_engine::read::Limit {
    what: "a recording",
    bytes: 64 << 20,
};

/// The recordings this run replays, by file: a host opened twice goes on where it was.
static TAPES: Mutex<BTreeMap<PathBuf, Arc<Mutex<Tape>>>> = Mutex::new(BTreeMap::new());

/// A host answered from the recording at `path`.
pub struct ReplayShell {
    path: PathBuf,
}

impl ReplayShell {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    fn error(&self, host: &str, source: ReplayError) -> Error {
        Error::Replay {
            host: host.to_string(),
            path: self.path.clone(),
            source: Box::new(source),
        }
    }

    fn tape(&self, host: &str) -> Result<Arc<Mutex<Tape>>, Error> {
        let mut tapes = TAPES.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tape) = tapes.get(&self.path) {
            return Ok(Arc::clone(tape));
        }
        let bytes = kmsconf_engine::read::read_bounded(&self.path, RECORDING)
            .map_err(|e| self.error(host, ReplayError::Read(e.to_string())))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            let start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let reason = format!(
                "line {line}, column {} is not UTF-8",
                good.len() - start + 1
            );
            self.error(host, ReplayError::Read(reason))
        })?;
        let tape = Arc::new(Mutex::new(
            Tape::read(&text).map_err(|e| self.error(host, e))?,
        ));
        tapes.insert(self.path.clone(), Arc::clone(&tape));
        Ok(tape)
    }
}

impl Transport for ReplayShell {
    fn start(&self, host: &str) -> Result<Session, Error> {
        let tape = self.tape(host)?;
        let opened = lock(&tape).expect("started a session", |e| matches!(e, Event::Open));
        opened.map_err(|e| self.error(host, e))?;
        Ok(Box::new(Replay {
            tape,
            host: host.to_string(),
        }))
    }

    /// What stopped the replay, if the run asked what the recording does not hold.
    fn failure(&self, host: &str, _: &Finished) -> Option<Error> {
        let tapes = TAPES.lock().unwrap_or_else(PoisonError::into_inner);
        let error = lock(tapes.get(&self.path)?).error.clone()?;
        Some(self.error(host, error))
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn name(&self) -> &'static str {
        "a recording"
    }

    /// A replay holds no lock on any host: the recording stopped answering because this run
    /// asked something else than the recorded one.
    fn unlock_advice(&self) -> &'static str {
        "a replay takes no lock on the host, so there is nothing to remove: the recording ended before the unlock; replay it with the config and plan it was recorded with, or record the run again (`KMSCONF_RECORD`)"
    }
}

fn lock(tape: &Mutex<Tape>) -> std::sync::MutexGuard<'_, Tape> {
    tape.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A recording's events, with their line numbers, and how far the run has come.
pub(super) struct Tape {
    pub(super) events: Vec<(usize, Event)>,
    next: usize,
    /// The first thing the run asked that the recording does not hold.
    error: Option<ReplayError>,
    /// The apply lock's ID in the recording and in this run.
    lock_ids: Option<(String, String)>,
}

impl Tape {
    /// Reads a recording, checking its header and every line's digest.
    pub(super) fn read(text: &str) -> Result<Self, ReplayError> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        let (_, first) = lines.next().ok_or(ReplayError::Empty)?;
        let header: Header = serde_json::from_str(first).map_err(|e| ReplayError::Header {
            reason: e.to_string(),
        })?;
        if header.format != FORMAT {
            return Err(ReplayError::Header {
                reason: format!(
                    "format `{}`, where this kmsconf reads `{FORMAT}`",
                    header.format
                ),
            });
        }
        let mut digest = header_digest(&header);
        let mut events = Vec::new();
        for (number, text) in lines.filter(|(_, l)| !l.trim().is_empty()) {
            let line: Line = serde_json::from_str(text).map_err(|e| ReplayError::Line {
                line: number,
                reason: e.to_string(),
            })?;
            digest = chained(&digest, &line.event);
            if digest != line.digest {
                return Err(ReplayError::Digest { line: number });
            }
            events.push((number, line.event));
        }
        Self::add_ready(&mut events);
        Ok(Self {
            events,
            next: 0,
            error: None,
            lock_ids: None,
        })
    }

    /// A recording made before the bootstrap said `ready` (the agent's line followed at once by
    /// a request) gets that line where the bootstrap now writes it, so it replays as it was
    /// recorded. A session that ended without a request (a damaged agent) gets none.
    fn add_ready(events: &mut Vec<(usize, Event)>) {
        let mut i = 0;
        while i + 1 < events.len() {
            if matches!(events[i].1, Event::Agent { .. })
                && matches!(events[i + 1].1, Event::Request(_))
            {
                let line = events[i].0;
                events.insert(i + 1, (line, Event::Answer(READY_LINE.to_string())));
            }
            i += 1;
        }
    }

    /// The line number of the last event, for a recording that ends too soon.
    fn last_line(&self) -> usize {
        self.events.last().map_or(1, |(n, _)| *n)
    }

    /// Takes the next event if `wanted` accepts it; otherwise the replay stops with an error
    /// saying the run `asked` something else.
    fn expect(
        &mut self,
        asked: &str,
        wanted: impl Fn(&Event) -> bool,
    ) -> Result<Event, ReplayError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let error = match self.events.get(self.next) {
            Some((_, event)) if wanted(event) => {
                self.next += 1;
                return Ok(event.clone());
            }
            Some((line, event)) => ReplayError::OutOfStep {
                line: *line,
                asked: asked.into(),
                recorded: describe(event),
            },
            None => ReplayError::Ended {
                line: self.last_line(),
                asked: asked.into(),
            },
        };
        self.error = Some(error.clone());
        Err(error)
    }

    /// Checks `request` against the next recorded request.
    fn request(&mut self, request: &Request, host: &str) -> Result<(), ReplayError> {
        let line = self
            .events
            .get(self.next)
            .map(|(n, _)| *n)
            .unwrap_or_default();
        let recorded = match self.expect(
            &format!("sent request {} (`{}`)", request.id, request.op),
            |e| matches!(e, Event::Request(_)),
        )? {
            Event::Request(text) => text,
            _ => return Ok(()),
        };
        let mut asked: Value = serde_json::from_str(&request.recorded(host)).unwrap_or_default();
        let mut recorded: Value = serde_json::from_str(&recorded).unwrap_or_default();
        self.match_lock(&mut asked, &mut recorded);
        // a different operation is the difference to name, before any of its arguments
        let op = |v: &Value| json!({ "op": v.get("op") });
        let difference = first_difference(&op(&recorded), &op(&asked), String::new())
            .or_else(|| first_difference(&recorded, &asked, String::new()));
        match difference {
            None => Ok(()),
            Some((at, recorded, asked)) => {
                let error = ReplayError::Differs {
                    line,
                    id: request.id,
                    at: if at.is_empty() {
                        "the request".into()
                    } else {
                        at
                    },
                    recorded,
                    asked,
                };
                self.error = Some(error.clone());
                Err(error)
            }
        }
    }

    /// The apply lock's holder names the run, so it is not compared: the lock request takes
    /// the recorded holder's place, and the unlock of this run's lock stands for the recorded
    /// unlock.
    fn match_lock(&mut self, asked: &mut Value, recorded: &mut Value) {
        let op = asked.get("op").and_then(Value::as_str).unwrap_or_default();
        if op == "lock" && recorded.get("op") == asked.get("op") {
            let id = |v: &Value| {
                let holder = v.get("holder").and_then(Value::as_str).unwrap_or_default();
                let holder: Value = serde_json::from_str(holder).unwrap_or_default();
                holder
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            self.lock_ids = Some((id(recorded), id(asked)));
            asked["holder"] = recorded["holder"].clone();
        } else if op == "unlock" {
            if let Some((was, now)) = &self.lock_ids {
                if asked.get("lock_id").and_then(Value::as_str) == Some(now) {
                    asked["lock_id"] = Value::String(was.clone());
                }
            }
        }
    }
}

/// An event as an error names it.
pub(super) fn describe(event: &Event) -> String {
    match event {
        Event::Open => "a new session".into(),
        Event::Agent { .. } => "the agent sent".into(),
        Event::Request(text) => {
            let op = serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.get("op").and_then(Value::as_str).map(String::from))
                .unwrap_or_default();
            format!("request `{op}`")
        }
        Event::Answer(_) => "a line from the host".into(),
        Event::Ended => "the host closing its output".into(),
        Event::TimedOut => "no answer in time".into(),
        Event::LineTooLong => "a line over the length kmsconf reads".into(),
        Event::Closed { .. } => "the session closed".into(),
    }
}

/// The first place where `asked` differs from `recorded`: its path (`args.value`, `profiles[1]`),
/// and both values there as JSON (`nothing` where one has no such field).
pub(super) fn first_difference(
    recorded: &Value,
    asked: &Value,
    at: String,
) -> Option<(String, String, String)> {
    let join = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    match (recorded, asked) {
        (Value::Object(r), Value::Object(a)) => {
            let keys: std::collections::BTreeSet<&String> = r.keys().chain(a.keys()).collect();
            keys.into_iter().find_map(|k| match (r.get(k), a.get(k)) {
                (Some(rv), Some(av)) => first_difference(rv, av, join(k)),
                (rv, av) => Some((join(k), shown(rv), shown(av))),
            })
        }
        (Value::Array(r), Value::Array(a)) if r.len() == a.len() => r
            .iter()
            .zip(a)
            .enumerate()
            .find_map(|(i, (rv, av))| first_difference(rv, av, format!("{at}[{i}]"))),
        (r, a) if r == a => None,
        (r, a) => Some((at, shown(Some(r)), shown(Some(a)))),
    }
}

fn shown(value: Option<&Value>) -> String {
    value.map_or_else(|| "nothing".into(), |v| format!("`{v}`"))
}

/// A session answered from the tape.
struct Replay {
    tape: Arc<Mutex<Tape>>,
    host: String,
}

impl Channel for Replay {
    /// The agent: this kmsconf's own, whatever the recording's was (its answers are the host's).
    fn send(&mut self, _: &[u8]) -> bool {
        lock(&self.tape)
            .expect("sent the agent", |e| matches!(e, Event::Agent { .. }))
            .is_ok()
    }

    fn request(&mut self, request: &Request) -> bool {
        lock(&self.tape).request(request, &self.host).is_ok()
    }

    fn next(&mut self, _: Instant) -> Next {
        let event = lock(&self.tape).expect("waited for an answer", |e| {
            matches!(
                e,
                Event::Answer(_) | Event::Ended | Event::TimedOut | Event::LineTooLong
            )
        });
        match event {
            Ok(Event::Answer(line)) => Next::Line(line),
            Ok(Event::TimedOut) => Next::TimedOut,
            Ok(Event::LineTooLong) => Next::LineTooLong,
            _ => Next::Ended,
        }
    }

    fn close(self: Box<Self>, kill: bool) -> Finished {
        let mut tape = lock(&self.tape);
        if tape.error.is_some() {
            return Finished::default();
        }
        match tape.expect("closed the session", |e| matches!(e, Event::Closed { .. })) {
            Ok(Event::Closed {
                exit_code,
                stderr,
                killed,
            }) => Finished {
                status: exit_code,
                stderr,
                timed_out: killed || kill,
                broken: None,
            },
            _ => Finished::default(),
        }
    }
}
