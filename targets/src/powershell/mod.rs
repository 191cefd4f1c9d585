//! The PowerShell/CIM side of a real Windows KMS host: the scripts kmsconf runs there (one for
//! discovery, one per batch of operations, each reading back what it wrote), how they travel
//! (a fixed bootstrap on the command line, script and secrets on standard input), and how their
//! answers become a [`HostState`] and one [`ChangeStatus`] per operation.
//!
//! The transports ([`super::ssh`], [`super::local`]) only move bytes; everything about
//! PowerShell is here, so it is the same over SSH and locally, and testable without Windows.

mod protocol;
mod script;
mod verify;

pub use protocol::{
    answer, batch_progress, discovery, messages, readable_stderr, Message, Progress,
};
pub use script::{batch_script, discovery_script, lock_script, unlock_script};
pub use verify::verify;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use kmsconf_engine::secret::Secret;
use serde_json::Value;

/// The program a transport starts on the host.
pub const PROGRAM: &str = "powershell.exe";

/// Reads the request (base64 of UTF-8 JSON) from standard input and runs its script with its
/// input. Fixed text with no secret in it: this is all that appears on the command line. Its
/// preferences are global, so the NetSecurity cmdlets (CDXML functions, which do not see a
/// script's own preference variables) stop on errors too, and no progress record ("Preparing
/// modules for first use") reaches stderr. Before anything else it checks the language mode:
/// under Constrained Language Mode (AppLocker or WDAC) the .NET calls that follow would fail
/// halfway, so it says so on a line of its own, with nothing but a cmdlet and a property read.
const BOOTSTRAP: &str = "$mode = [string]$ExecutionContext.SessionState.LanguageMode; \
if ($mode -ne 'FullLanguage') { Write-Output ('KMSCONF-LANGUAGE-MODE:' + $mode); exit 1 }; \
$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue'; \
$raw = [Console]::In.ReadToEnd(); \
$request = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($raw.Trim())) | ConvertFrom-Json; \
& ([ScriptBlock]::Create($request.script)) $request.input";

/// The arguments after [`PROGRAM`]: no profile, no prompt, the bootstrap as `-EncodedCommand`
/// (UTF-16LE, base64) so no shell on the way (cmd.exe or PowerShell as the SSH server's default
/// shell) can reinterpret it.
pub fn arguments() -> Vec<String> {
    let utf16: Vec<u8> = BOOTSTRAP
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    [
        "-NoLogo",
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Bypass",
        "-EncodedCommand",
    ]
    .into_iter()
    .map(String::from)
    .chain([BASE64.encode(utf16)])
    .collect()
}

/// A script and the secrets it reads, ready to be sent on standard input.
pub struct Script {
    pub text: String,
    secrets: Vec<(String, Secret)>,
}

impl Script {
    /// What goes to the host's standard input: base64 of `{"script": ..., "input": {"secrets": ...}}`.
    /// Holds secrets: never log it.
    pub fn stdin(&self) -> Secret {
        let secrets: serde_json::Map<String, Value> = self
            .secrets
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.expose().to_string())))
            .collect();
        let doc = serde_json::json!({ "script": self.text, "input": { "secrets": secrets } });
        Secret::new(format!("{}\n", BASE64.encode(doc.to_string())))
    }

    /// Removes every secret of this script from a text the host sent back.
    pub fn redact(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_string(), |t, (_, s)| {
            if s.expose().is_empty() {
                t
            } else {
                t.replace(s.expose(), "<redacted>")
            }
        })
    }
}

/// A PowerShell single-quoted string. Doubling escapes a quote; PowerShell also takes the
/// typographic single quotes as quotes, so they are doubled too.
pub fn quote(text: &str) -> String {
    let mut out = String::from("'");
    for c in text.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| quote(i)).collect();
    format!("@({})", quoted.join(", "))
}

#[cfg(test)]
mod names;
#[cfg(test)]
mod tests;
