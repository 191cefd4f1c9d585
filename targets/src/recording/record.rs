//! Writing a recording: [`Recorded`] wraps a transport so that every session it starts writes
//! its exchanges to the host's file. The file is started once per run: a host whose session is
//! opened again (a second target for it, or a session that ended early) goes on in the same
//! file, as one more `open`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use kmsconf_engine::secret::Secret;

use super::{chained, header_digest, Event, Header, Line, FORMAT};
use crate::powershell::Request;
use crate::process::Finished;
use crate::session::{Channel, Next, Session};
use crate::windows::Transport;
use crate::Error;

/// The recordings this run writes, by file: a host opened twice goes on in its file.
static WRITERS: Mutex<BTreeMap<PathBuf, Arc<Mutex<Writer>>>> = Mutex::new(BTreeMap::new());

/// A transport whose sessions are recorded to `DIR/HOST.jsonl`.
pub struct Recorded<T> {
    inner: T,
    path: PathBuf,
    transport: String,
}

impl<T: Transport> Recorded<T> {
    /// Records `inner`'s sessions with host `host` into `dir`; `transport` is the target as the
    /// config writes it.
    pub fn new(inner: T, dir: &Path, host: &str, transport: String) -> Self {
        Self {
            inner,
            path: dir.join(format!("{host}.jsonl")),
            transport,
        }
    }

    /// The host's recording, started (header written) the first time this run needs it.
    fn writer(&self, host: &str) -> Result<Arc<Mutex<Writer>>, Error> {
        let mut writers = WRITERS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(writer) = writers.get(&self.path) {
            return Ok(Arc::clone(writer));
        }
        let header = Header {
            format: FORMAT.into(),
            kmsconf: env!("CARGO_PKG_VERSION").into(),
            host: host.into(),
            transport: self.transport.clone(),
            started: kmsconf_engine::lock::rfc3339(kmsconf_model::clock::now()),
        };
        let writer = Arc::new(Mutex::new(Writer::create(&self.path, &header)?));
        writers.insert(self.path.clone(), Arc::clone(&writer));
        Ok(writer)
    }
}

impl<T: Transport> Transport for Recorded<T> {
    fn start(&self, host: &str) -> Result<Session, Error> {
        let writer = self.writer(host)?;
        let inner = self.inner.start(host)?;
        lock(&writer).write(Event::Open);
        Ok(Box::new(Recorder {
            inner,
            writer,
            host: host.to_string(),
        }))
    }

    fn failure(&self, host: &str, run: &Finished) -> Option<Error> {
        self.inner.failure(host, run)
    }

    fn timeout(&self) -> Duration {
        self.inner.timeout()
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

/// One host's recording file, and the secrets its requests carried (kept out of every line).
struct Writer {
    path: PathBuf,
    file: File,
    digest: String,
    secrets: Vec<Secret>,
    failed: bool,
}

fn lock(writer: &Mutex<Writer>) -> std::sync::MutexGuard<'_, Writer> {
    writer.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Writer {
    fn create(path: &Path, header: &Header) -> Result<Self, Error> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = File::create(path).map_err(io)?;
        let text = serde_json::to_string(header).unwrap_or_default();
        writeln!(file, "{text}").map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            digest: header_digest(header),
            secrets: Vec::new(),
            failed: false,
        })
    }

    /// Appends `event`. A recording that cannot be written says so once, and the run goes on:
    /// the recording serves a bug report, the run serves the user.
    fn write(&mut self, event: Event) {
        self.digest = chained(&self.digest, &event);
        let line = Line {
            event,
            digest: self.digest.clone(),
        };
        let text = serde_json::to_string(&line).unwrap_or_default();
        if let Err(e) = writeln!(self.file, "{text}") {
            if !std::mem::replace(&mut self.failed, true) {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot write the recording; it is incomplete");
            }
        }
    }

    /// `text` without any secret a request of this session carried.
    fn scrub(&self, text: &str) -> String {
        scrub(text, &self.secrets)
    }
}

/// A session whose every step is written to its host's recording.
struct Recorder {
    inner: Session,
    writer: Arc<Mutex<Writer>>,
    host: String,
}

impl Channel for Recorder {
    fn send(&mut self, bytes: &[u8]) -> bool {
        lock(&self.writer).write(Event::Agent { bytes: bytes.len() });
        self.inner.send(bytes)
    }

    fn request(&mut self, request: &Request) -> bool {
        {
            let mut writer = lock(&self.writer);
            writer.secrets.extend(request.secrets().cloned());
            writer.write(Event::Request(request.recorded(&self.host)));
        }
        self.inner.request(request)
    }

    fn next(&mut self, deadline: Instant) -> Next {
        let next = self.inner.next(deadline);
        let mut writer = lock(&self.writer);
        let event = match &next {
            Next::Line(line) => Event::Answer(writer.scrub(line)),
            Next::Ended => Event::Ended,
            Next::TimedOut => Event::TimedOut,
            Next::LineTooLong => Event::LineTooLong,
        };
        writer.write(event);
        next
    }

    fn close(self: Box<Self>, kill: bool) -> Finished {
        let run = self.inner.close(kill);
        let mut writer = lock(&self.writer);
        let stderr = writer.scrub(&run.stderr);
        writer.write(Event::Closed {
            exit_code: run.status,
            stderr,
            killed: run.timed_out,
        });
        run
    }
}

/// `text` without any of `secrets`: as it is, and inside an answer line's base64 (the host's own
/// text can quote what it was given). Anything else stays verbatim.
pub(super) fn scrub(text: &str, secrets: &[Secret]) -> String {
    let values: Vec<&str> = secrets
        .iter()
        .map(Secret::expose)
        .filter(|s| !s.is_empty())
        .collect();
    let redact = |t: &str| {
        values
            .iter()
            .fold(t.to_string(), |t, s| t.replace(s, "<redacted>"))
    };
    let Some((kind, data)) = text
        .trim_end()
        .strip_prefix("KMSCONF:")
        .and_then(|rest| rest.split_once(':'))
    else {
        return redact(text);
    };
    let decoded = BASE64
        .decode(data.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    match decoded {
        Some(json) if values.iter().any(|s| json.contains(s)) => {
            let ending = &text[text.trim_end().len()..];
            format!("KMSCONF:{kind}:{}{ending}", BASE64.encode(redact(&json)))
        }
        _ => redact(text),
    }
}
