//! What comes back from a script: readable stderr (CLIXML decoded), the `KMSCONF:` answer lines,
//! the discovery answer, and how far a batch got with one outcome per operation.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use kmsconf_engine::target::ChangeStatus;
use kmsconf_model::catalog;
use kmsconf_model::ops::TargetOp;
use kmsconf_model::state::HostState;
use serde::Deserialize;
use serde_json::Value;

use super::verify::verify;
use super::Script;
use crate::cim::{self, Observations};

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

/// One line of the host's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: String,
    pub json: String,
}

/// What the bootstrap prints instead of running anything when PowerShell is not in
/// FullLanguage mode.
const LANGUAGE_MODE: &str = "KMSCONF-LANGUAGE-MODE:";

/// The `KMSCONF:` lines of the host's standard output, decoded; other lines are ignored. A
/// session in Constrained Language Mode is an error that says so.
pub fn messages(stdout: &str) -> Result<Vec<Message>, String> {
    if let Some(mode) = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(LANGUAGE_MODE))
    {
        return Err(format!(
            "PowerShell on the host runs in `{}` mode (an AppLocker or WDAC policy), where kmsconf's scripts cannot make the .NET calls they need; nothing was run: use an account or endpoint whose sessions run in FullLanguage mode",
            mode.trim()
        ));
    }
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("KMSCONF:"))
        .map(|rest| {
            let (kind, data) = rest
                .split_once(':')
                .ok_or_else(|| format!("malformed answer line `KMSCONF:{rest}`"))?;
            let bytes = BASE64
                .decode(data.trim())
                .map_err(|e| format!("answer `{kind}` is not base64: {e}"))?;
            let json =
                String::from_utf8(bytes).map_err(|_| format!("answer `{kind}` is not UTF-8"))?;
            Ok(Message {
                kind: kind.to_string(),
                json,
            })
        })
        .collect()
}

/// An error the script reported for itself (`KMSCONF:error:`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScriptError {
    h_result: Option<String>,
    message: Option<String>,
}

/// The JSON of the host's `kind` answer, or the error the script reported. `what` names the
/// step in messages (`discovery`, `lock`).
pub fn answer(stdout: &str, kind: &str, what: &str) -> Result<String, String> {
    let messages = messages(stdout)?;
    if let Some(m) = messages.iter().find(|m| m.kind == "error") {
        let e: ScriptError = cim::from_json(&m.json)?;
        let message = e.message.unwrap_or_default();
        return Err(match e.h_result.as_deref().and_then(catalog::parse_code) {
            Some(code) => format!(
                "{what} failed: {}",
                catalog::explain_failure(code, &message)
            ),
            None => format!("{what} failed: {message}"),
        });
    }
    messages
        .into_iter()
        .find(|m| m.kind == kind)
        .map(|m| m.json)
        .ok_or_else(|| format!("the host sent no {what} answer"))
}

/// Reads the discovery answer. `Err` holds a message for the user.
pub fn discovery(stdout: &str) -> Result<(HostState, Observations), String> {
    let json = answer(stdout, "discovery", "discovery")?;
    cim::parse_discovery(&json).map_err(|e| format!("cannot read the discovery answer: {e}"))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OpResult {
    index: usize,
    ok: bool,
    h_result: Option<String>,
    message: Option<String>,
    read_back: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Begin {
    index: usize,
}

/// How far the host got with a batch, from the lines it sent before the transport ended.
#[derive(Debug, Default)]
pub struct Progress {
    pub began: Vec<bool>,
    pub results: Vec<Option<ChangeStatus>>,
}

/// Reads a batch's answers: one outcome per operation the host reported on, each checked
/// against what it read back. Operations without a result are `None` in `results`; `began`
/// says whether the host started them.
pub fn batch_progress(
    batch: &[TargetOp],
    script: &Script,
    stdout: &str,
) -> Result<Progress, String> {
    let mut progress = Progress {
        began: vec![false; batch.len()],
        results: vec![None; batch.len()],
    };
    for m in messages(stdout)? {
        match m.kind.as_str() {
            "begin" => {
                let b: Begin = cim::from_json(&m.json)?;
                if let Some(slot) = progress.began.get_mut(b.index) {
                    *slot = true;
                }
            }
            "result" => {
                let r: OpResult = cim::from_json(&m.json)?;
                let Some(op) = batch.get(r.index) else {
                    return Err(format!(
                        "the host answered for operation {} of {}",
                        r.index,
                        batch.len()
                    ));
                };
                let index = r.index;
                progress.results[index] = Some(outcome(op, r, script));
            }
            _ => {}
        }
    }
    Ok(progress)
}

fn outcome(op: &TargetOp, r: OpResult, script: &Script) -> ChangeStatus {
    if !r.ok {
        let message = script.redact(
            r.message
                .as_deref()
                .unwrap_or("the host gave no message")
                .trim()
                // Windows' messages end in a period; the explanation follows after a colon
                .trim_end_matches('.'),
        );
        return match r.h_result.as_deref().and_then(catalog::parse_code) {
            Some(code) => ChangeStatus::failed(code, catalog::explain_failure(code, &message)),
            None => ChangeStatus::Failed {
                code: None,
                message,
            },
        };
    }
    let read_back = r.read_back.unwrap_or(Value::Null);
    match verify(op, &read_back) {
        Ok(outcome) => outcome,
        Err(message) => ChangeStatus::Failed {
            code: None,
            message: format!("the host accepted the change but did not take it: {message}"),
        },
    }
}
