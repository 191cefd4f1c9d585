//! The model's one error type: a config file that cannot be read or is invalid, and each
//! module's own error (a target, a key, a duration, a setting value) joined with `#[from]`.
//!
//! The module errors that need no type of their module are defined here, below every module
//! (which re-exports its own), so that the modules can return the crate's error and this module
//! still imports none of them but the leaves `keys`, `clock` and `tables`.

use kmsconf_engine::diagnostic::{quoted, Diagnostic};

use crate::clock::DurationError;
use crate::keys::KeyError;
use crate::tables::TableError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] kmsconf_engine::Error),
    /// The configuration has one or more errors; each carries its file, line and column.
    #[error("{}", render_diagnostics(.0))]
    Invalid(Vec<Diagnostic>),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    HostName(#[from] HostNameError),
    #[error(transparent)]
    Timeout(#[from] TimeoutOutOfRange),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Duration(#[from] DurationError),
    #[error(transparent)]
    Setting(#[from] SettingError),
    #[error(transparent)]
    NotAKmsHost(#[from] NotAKmsHost),
    /// A knowledge table compiled into the build does not read.
    #[error(transparent)]
    Table(#[from] TableError),
}

/// A value a host reported that the licensing service's protocol does not allow (an installation
/// ID that is not 63 digits, a client machine ID that is no GUID): the property, the value as
/// read (quoted, escaped and cut) and what it must be. Defined here for `state`, which
/// re-exports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{property}` = {} is not {expected}", quoted(.value))]
pub struct ProtocolValue {
    pub property: &'static str,
    pub value: String,
    pub expected: &'static str,
}

fn render_diagnostics(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

const EXPECTED: &str = "expected `lab:PATH`, `replay:PATH`, `local`, `ssh://[user@]host[:port]`, `winrm://user@host[:port]` or `winrm+https://user@host[:port]`";

/// Why a `target` does not read. `target` is the text as written (`{}` quotes it); the ssh and
/// winrm password errors do not repeat it, as it would print the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("target `local` means this machine is the KMS host, but kmsconf is not running on Windows; use `ssh://user@host` or `winrm://user@host` to reach a Windows host")]
    LocalNotWindows,
    #[error("unknown target {}; {EXPECTED}", quoted(.target))]
    Unknown { target: String },
    #[error("target `{target}` has no path; {EXPECTED}")]
    LabNoPath { target: String },
    #[error("target {}: `~` is not expanded in a config; write the path relative to the config file, or absolute", quoted(.target))]
    LabHome { target: String },
    #[error("target {}: {}", quoted(.target), .reason)]
    Replay { target: String, reason: String },
    #[error("an ssh target must not hold a password (`user:password@host`): kmsconf runs ssh in batch mode, which never sends one; use key authentication and write `ssh://user@host`")]
    SshPassword,
    #[error("target {} is not a valid ssh target; {EXPECTED}", quoted(.target))]
    SshInvalid { target: String },
    #[error("a winrm target must not hold a password (`user:password@host`): plans show and save the target; write `{scheme}user@host` and declare the password in `[hosts.NAME.winrm]` as `password = {{ env = \"VAR\" }}`")]
    WinRmPassword { scheme: String },
    #[error("target {} is not a valid winrm target; expected `{scheme}user@host[:port]`, the account as `user`, `DOMAIN\\user` or `user@domain`", quoted(.target))]
    WinRmInvalid { target: String, scheme: String },
    #[error("target {} names no account: WinRM logs on as a Windows account, so write it in the target (`{scheme}DOMAIN\\user@host` or `{scheme}user@domain@host`) and its password in `[hosts.NAME.winrm]`", quoted(.target))]
    WinRmNoAccount { target: String, scheme: String },
}

/// A host name (`[hosts.NAME]`, `kmsconf export --name`) with a character it may not use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host name {} may use only ASCII letters, digits, `-`, `_` and `.`", quoted(.name))]
pub struct HostNameError {
    pub name: String,
}

/// An operation timeout outside `OperationTimeout::RANGE` (`min..=max`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operation timeout {seconds} is out of range {min}..={max} seconds")]
pub struct TimeoutOutOfRange {
    pub seconds: u32,
    pub min: u32,
    pub max: u32,
}

/// A DNS server's or a directory's entry where a KMS host's was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this is a DNS server or a directory, not a KMS host")]
pub struct NotAKmsHost;

/// Why a setting cannot take a value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingError {
    #[error("unknown setting `{key}`")]
    Unknown { key: String },
    /// `meaning` is the row's description of what the setting takes.
    #[error("`{key}` takes {meaning}, not `{value}`")]
    WrongKind {
        key: &'static str,
        meaning: &'static str,
        /// The value as the plan shows it.
        value: String,
    },
    #[error("the table of settings is in use already: a test declares its rows before anything reads them")]
    TableInUse,
}
