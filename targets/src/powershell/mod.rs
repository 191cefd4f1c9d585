//! The PowerShell/CIM side of a real Windows KMS host: the agent kmsconf starts there once per
//! run (a fixed script; each operation one function in it), the requests it is sent (operations
//! as data, one JSON line each), how they travel (a fixed bootstrap on the command line, then the
//! agent and the requests on standard input), and how its answers become a [`HostState`] and one
//! [`ChangeStatus`] per operation.
//!
//! The transports ([`super::ssh`], [`super::local`]) only move bytes; everything about
//! PowerShell is here, so it is the same over SSH and locally, and testable without Windows.
//!
//! [`HostState`]: kmsconf_model::state::HostState
//! [`ChangeStatus`]: kmsconf_engine::target::ChangeStatus

mod protocol;
mod request;
mod script;
mod verify;

pub use protocol::{
    discovery, message, outcome, readable_stderr, AgentError, Answer, Begin, Message,
};
pub use request::Request;
pub use script::agent_script;
pub use verify::{verify, VerifyError};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// The program a transport starts on the host.
pub const PROGRAM: &str = "powershell.exe";

/// Reads the agent (one line of base64 of UTF-8) from standard input and runs it; the agent then
/// reads the requests that follow. Fixed text with no secret in it: this is all that appears on
/// the command line. Its preferences are global, so the NetSecurity cmdlets (CDXML functions,
/// which do not see a script's own preference variables) stop on errors too, and no progress
/// record ("Preparing modules for first use") reaches stderr. Before anything else it checks the
/// language mode: under Constrained Language Mode (AppLocker or WDAC) the .NET calls that follow
/// would fail halfway, so it says so on a line of its own, with nothing but a cmdlet and a
/// property read.
const BOOTSTRAP: &str = "$mode = [string]$ExecutionContext.SessionState.LanguageMode; \
if ($mode -ne 'FullLanguage') { Write-Output ('KMSCONF-LANGUAGE-MODE:' + $mode); exit 1 }; \
$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue'; \
$agent = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String([Console]::In.ReadLine().Trim())); \
& ([ScriptBlock]::Create($agent))";

/// The first line of a session's input: the agent script, as [`BOOTSTRAP`] reads it.
pub fn agent_line() -> String {
    format!("{}\n", BASE64.encode(agent_script()))
}

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
pub(crate) mod names;
#[cfg(test)]
mod script_tests;
#[cfg(test)]
mod tests;
