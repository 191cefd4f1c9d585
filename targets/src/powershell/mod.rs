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
    discovery, message, outcome, readable_stderr, AgentError, Answer, Begin, Damage, Message,
    DAMAGED, READY, READY_LINE,
};
pub use request::Request;
pub use script::{agent_script, agent_sha256, sha256};
pub use verify::{pending_forest_installation_id, verify, VerifyError};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use std::sync::OnceLock;

/// The program a transport starts on the host.
pub const PROGRAM: &str = "powershell.exe";

/// Reads the agent (one line of base64 of UTF-8) from standard input, checks it arrived intact,
/// and runs it; the agent then reads the requests that follow. Fixed text with no secret in it
/// (the agent's SHA-256 is the only thing filled in): this is all that appears on the command
/// line. Its preferences are global, so the NetSecurity cmdlets (CDXML functions, which do not
/// see a script's own preference variables) stop on errors too, and no progress record
/// ("Preparing modules for first use") reaches stderr.
///
/// Before anything else it checks the language mode: under Constrained Language Mode (AppLocker
/// or WDAC) the .NET calls that follow would fail halfway, so it says so on a line of its own,
/// with nothing but a cmdlet and a property read. Then it hashes what it read (the `sha256` row
/// of the facts table: the CSP class works under the FIPS policy on every .NET Framework) and,
/// when that is not the SHA-256 kmsconf sent, or the line is not base64 at all, answers one
/// framed `damaged` line (what it expected, what it computed, how many bytes it decoded) and
/// ends with exit code 1, before reading any request. An intact agent is announced with one
/// `ready` line ([`READY_LINE`]) before it runs, and kmsconf sends its first request only after
/// that line: a host that refuses the agent is never sent a request.
const BOOTSTRAP: &str = "$mode = [string]$ExecutionContext.SessionState.LanguageMode; \
if ($mode -ne 'FullLanguage') { Write-Output ('KMSCONF-LANGUAGE-MODE:' + $mode); exit 1 }; \
$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue'; \
$expected = 'AGENT_SHA256'; $bytes = $null; $received = ''; \
try { $bytes = [Convert]::FromBase64String([Console]::In.ReadLine().Trim()) } catch { $bytes = $null }; \
if ($null -ne $bytes) { $received = -join ((New-Object SHA256_CLASS).ComputeHash($bytes) | ForEach-Object { $_.ToString('x2') }) }; \
if ($received -ne $expected) { \
$damage = ConvertTo-Json -Compress -InputObject @{ Expected = $expected; Received = $received; Bytes = $(if ($null -eq $bytes) { $null } else { $bytes.Length }) }; \
[Console]::Out.WriteLine('KMSCONF:damaged:' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($damage))); \
[Console]::Out.Flush(); exit 1 }; \
[Console]::Out.WriteLine('READY_LINE'); [Console]::Out.Flush(); \
& ([ScriptBlock]::Create([Text.Encoding]::UTF8.GetString($bytes)))";

/// The `sha256` row of the facts table: the .NET class the bootstrap hashes with.
const SHA256_CLASS: &str = "System.Security.Cryptography.SHA256CryptoServiceProvider";

/// [`BOOTSTRAP`] with the SHA-256 of this kmsconf's agent in it, built once.
fn bootstrap() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        BOOTSTRAP
            .replace("AGENT_SHA256", agent_sha256())
            .replace("SHA256_CLASS", SHA256_CLASS)
            .replace("READY_LINE", READY_LINE)
    })
}

/// The first line of a session's input: the agent script, as [`BOOTSTRAP`] reads it.
pub fn agent_line() -> String {
    format!("{}\n", BASE64.encode(agent_script()))
}

/// The arguments after [`PROGRAM`]: no profile, no prompt, the bootstrap as `-EncodedCommand`
/// (UTF-16LE, base64) so no shell on the way (cmd.exe or PowerShell as the SSH server's default
/// shell) can reinterpret it.
pub fn arguments() -> Vec<String> {
    let utf16: Vec<u8> = bootstrap()
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
mod answer_tests;
#[cfg(test)]
pub(crate) mod names;
#[cfg(test)]
mod script_tests;
#[cfg(test)]
mod tests;
