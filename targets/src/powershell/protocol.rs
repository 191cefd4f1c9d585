//! What comes back from the agent: readable stderr (CLIXML decoded), the `KMSCONF:` answer lines,
//! each request's answer, the discovery document, and one outcome per operation checked against
//! what the host read back.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use kmsconf_engine::target::ChangeStatus;
use kmsconf_model::catalog;
use kmsconf_model::ops::TargetOp;
use kmsconf_model::state::HostState;
use serde::Deserialize;
use serde_json::Value;

use super::verify::verify;
use super::Request;
use crate::cim::{self, CimError, Observations};

/// Windows PowerShell started with `-EncodedCommand` and redirected streams writes its error
/// and progress streams to stderr as CLIXML (`#< CLIXML`, then `<Objs ...>` holding
/// `<S S="Error">text_x000D__x000A_</S>` per error line and progress records): the error text
/// as a person reads it, progress dropped. Other stderr is returned as it is.
pub fn readable_stderr(stderr: &str) -> String {
    const MARKER: &str = "#< CLIXML";
    const OPEN: &str = "<S S=\"Error\">";
    let Some(start) = stderr.find(MARKER) else {
        return stderr.to_string();
    };
    let mut out = stderr[..start].to_string();
    let mut rest = &stderr[start + MARKER.len()..];
    while let Some(i) = rest.find(OPEN) {
        rest = &rest[i + OPEN.len()..];
        let Some(end) = rest.find("</S>") else {
            break;
        };
        out.push_str(&clixml_text(&rest[..end]));
        rest = &rest[end + "</S>".len()..];
    }
    out
}

/// A CLIXML string's text: XML entities, then PowerShell's `_xHHHH_` escapes (UTF-16 units).
fn clixml_text(escaped: &str) -> String {
    let xml = escaped
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    let mut units: Vec<u16> = Vec::new();
    let mut rest = xml.as_str();
    while let Some(i) = rest.find("_x") {
        let code = rest
            .get(i + 2..i + 7)
            .filter(|c| c.ends_with('_'))
            .and_then(|c| u16::from_str_radix(&c[..4], 16).ok());
        match code {
            Some(unit) => {
                units.extend(rest[..i].encode_utf16());
                units.push(unit);
                rest = &rest[i + 7..];
            }
            None => {
                units.extend(rest[..i + 2].encode_utf16());
                rest = &rest[i + 2..];
            }
        }
    }
    units.extend(rest.encode_utf16());
    String::from_utf16_lossy(&units)
}

/// What the agent answered that says a request failed, or that kmsconf cannot read.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The session runs in a language mode where the agent cannot work; nothing was run.
    #[error("PowerShell on the host runs in `{mode}` mode (an AppLocker or WDAC policy), where kmsconf's agent cannot make the .NET calls it needs; nothing was run: use an account or endpoint whose sessions run in FullLanguage mode")]
    LanguageMode { mode: String },
    /// The bootstrap found that the agent it read is not the one kmsconf sent; nothing ran.
    #[error("the agent arrived damaged (SHA-256 mismatch): {0}")]
    Damaged(Damage),
    #[error("malformed answer line `KMSCONF:{line}`")]
    MalformedLine { line: String },
    #[error("answer `{kind}` is not base64: {source}")]
    Base64 {
        kind: String,
        source: base64::DecodeError,
    },
    #[error("answer `{kind}` is not UTF-8")]
    Utf8 { kind: String },
    /// The agent reported that `step` (`discovery`, `lock`) failed, with the host's HRESULT
    /// where it gave one.
    #[error("{step} failed: {}", explained(*code, message))]
    Failed {
        step: String,
        code: Option<u32>,
        message: String,
    },
    #[error("cannot read the discovery answer: {0}")]
    Discovery(#[source] CimError),
    /// The host sent what no request of the round asked for: the session is ended, since no
    /// later answer can be trusted to answer what it claims to.
    #[error("the host broke the agent protocol ({0}), so kmsconf ended the session")]
    Protocol(String),
    #[error("a line of the agent's output passed {} MiB (the cap on one answer line), so kmsconf ended the session", crate::output::MAX_LINE >> 20)]
    LineTooLong,
    #[error("the agent's output for one round of requests passed {} MiB (the cap on one round), so kmsconf ended the session", crate::output::MAX_ROUND >> 20)]
    RoundTooLong,
}

impl AgentError {
    /// The bootstrap's refusal to run the agent (its language mode, a damaged agent): the
    /// session ends after it, with no answer to any request.
    pub fn ends_session(&self) -> bool {
        matches!(self, Self::LanguageMode { .. } | Self::Damaged(_))
    }
}

/// The host's message, explained by its HRESULT where there is one.
fn explained(code: Option<u32>, message: &str) -> String {
    match code {
        Some(code) => catalog::explain_failure(code, message),
        None => message.to_string(),
    }
}

/// One `KMSCONF:<kind>:<base64 JSON>` line of the agent's output, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: String,
    pub json: String,
}

/// What the bootstrap prints instead of running anything when PowerShell is not in
/// FullLanguage mode.
const LANGUAGE_MODE: &str = "KMSCONF-LANGUAGE-MODE:";

/// The kind of the one line the bootstrap answers when the agent it read is not the one sent.
pub const DAMAGED: &str = "damaged";

/// The kind of the line the bootstrap answers once the agent it read is the one sent, before it
/// runs it: kmsconf sends no request before this line, so a host whose agent arrived damaged
/// (or that refuses to run it) is never sent one.
pub const READY: &str = "ready";

/// The whole `ready` line (its JSON is `{}`), as the bootstrap and `kmsconf lab agent` write it.
pub const READY_LINE: &str = "KMSCONF:ready:e30=";

/// What the bootstrap reports of an agent that did not arrive intact: the SHA-256 it expected
/// (from its command line), the one it computed, and how many bytes it decoded (`None`: the
/// line was not base64, or did not come).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Damage {
    pub expected: String,
    pub received: String,
    pub bytes: Option<u64>,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sent = super::agent_script().len();
        match self.bytes {
            Some(bytes) => write!(
                f,
                "kmsconf sent {sent} bytes with SHA-256 `{}`, the host decoded {bytes} bytes with SHA-256 `{}`",
                self.expected, self.received
            )?,
            None => write!(
                f,
                "kmsconf sent {sent} bytes with SHA-256 `{}`, and what the host read was not that line in base64",
                self.expected
            )?,
        }
        write!(f, "; nothing was run: something on the way altered the data (a proxy, a shell or console that rewrites its input); run again, and report it if it recurs")
    }
}

/// The answer line in `line`, if it is one (other output, such as a banner, is `None`). A
/// session in Constrained Language Mode, or whose agent arrived damaged, is an error that says
/// so.
pub fn message(line: &str) -> Option<Result<Message, AgentError>> {
    let line = line.trim();
    if let Some(mode) = line.strip_prefix(LANGUAGE_MODE) {
        return Some(Err(AgentError::LanguageMode {
            mode: mode.trim().to_string(),
        }));
    }
    let message = line.strip_prefix("KMSCONF:").map(decode)?;
    Some(message.and_then(|m| {
        if m.kind != DAMAGED {
            return Ok(m);
        }
        match serde_json::from_str::<Damage>(&m.json) {
            Ok(damage) => Err(AgentError::Damaged(damage)),
            Err(_) => Err(AgentError::MalformedLine {
                line: format!("{DAMAGED}:{}", m.json),
            }),
        }
    }))
}

/// The most of a malformed answer line an error quotes (the line itself may be megabytes).
const QUOTED: usize = 64;

fn decode(rest: &str) -> Result<Message, AgentError> {
    let malformed = || AgentError::MalformedLine {
        line: match rest.char_indices().nth(QUOTED) {
            Some((end, _)) => format!("{}… ({} bytes)", &rest[..end], rest.len()),
            None => rest.to_string(),
        },
    };
    let (kind, data) = rest.split_once(':').ok_or_else(malformed)?;
    // the agent's kinds are short lowercase words; anything else is quoted cut, never whole
    if kind.is_empty() || kind.len() > 16 || !kind.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(malformed());
    }
    let bytes = BASE64
        .decode(data.trim())
        .map_err(|source| AgentError::Base64 {
            kind: kind.to_string(),
            source,
        })?;
    let json = String::from_utf8(bytes).map_err(|_| AgentError::Utf8 {
        kind: kind.to_string(),
    })?;
    Ok(Message {
        kind: kind.to_string(),
        json,
    })
}

/// The answer to one request: `begin` says the agent started it; every other kind ends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Answer {
    pub id: Option<u64>,
    pub ok: bool,
    pub h_result: Option<String>,
    pub message: Option<String>,
    #[serde(default)]
    pub answer: Value,
}

impl Answer {
    /// What the agent answered, or the failure it reported, for the user. `what` names the
    /// step (`discovery`, `lock`).
    pub fn value(self, what: &str) -> Result<Value, AgentError> {
        if self.ok {
            return Ok(self.answer);
        }
        Err(AgentError::Failed {
            step: what.to_string(),
            code: self.h_result.as_deref().and_then(catalog::parse_code),
            message: self.message.unwrap_or_default(),
        })
    }
}

/// The `Id` of a `begin` line.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Begin {
    pub id: u64,
}

/// Reads the discovery document.
pub fn discovery(answer: Answer) -> Result<(HostState, Observations), AgentError> {
    let json = answer.value("discovery")?.to_string();
    cim::parse_discovery(&json).map_err(AgentError::Discovery)
}

/// The outcome of one operation from its answer: the host's failure with its HRESULT, or what
/// it read back checked against what was sent.
pub fn outcome(op: &TargetOp, answer: Answer, request: &Request) -> ChangeStatus {
    if !answer.ok {
        let message = request.redact(
            answer
                .message
                .as_deref()
                .unwrap_or("the host gave no message")
                .trim()
                // Windows' messages end in a period; the explanation follows after a colon
                .trim_end_matches('.'),
        );
        return match answer.h_result.as_deref().and_then(catalog::parse_code) {
            Some(code) => ChangeStatus::failed(code, catalog::explain_failure(code, &message)),
            None => ChangeStatus::Failed {
                code: None,
                message,
            },
        };
    }
    match verify(op, &answer.answer) {
        Ok(outcome) => outcome,
        Err(e) => ChangeStatus::Failed {
            code: None,
            message: format!("the host accepted the change but did not take it: {e}"),
        },
    }
}
