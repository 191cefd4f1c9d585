//! What a `winrm://` or `winrm+https://` target needs besides its URL: the `[hosts.NAME.winrm]`
//! settings. They travel inside the target, so a saved plan carries them (the password as its
//! reference, never its value) and `apply PLANFILE` connects without the config.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::TimeoutOutOfRange;

use super::WinRmAuth;
use kmsconf_engine::secret::DeclaredSecret;

/// Where a WinRM target given on the command line (`export --target winrm://…`), which has no
/// `[hosts.NAME.winrm]` table, reads its password; an exported config reads it there too.
pub const WINRM_PASSWORD_VARIABLE: &str = "KMSCONF_WINRM_PASSWORD";

/// WinRM's port over HTTP (`winrm://`).
pub const WINRM_HTTP_PORT: u16 = 5985;
/// WinRM's port over HTTPS (`winrm+https://`).
pub const WINRM_HTTPS_PORT: u16 = 5986;

/// The port a WinRM target without one is reached on.
pub fn default_winrm_port(https: bool) -> u16 {
    if https {
        WINRM_HTTPS_PORT
    } else {
        WINRM_HTTP_PORT
    }
}

/// How kmsconf logs on to a WinRM host, from its `[hosts.NAME.winrm]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinRmSettings {
    /// The account's password (`{ env }` or `{ file }`, never a literal). `None`: Kerberos from
    /// a ticket ([`Self::keytab`] or the credential cache), or, for a target given on the
    /// command line (`export --target`), [`WINRM_PASSWORD_VARIABLE`] when it is set.
    pub password: Option<DeclaredSecret>,
    pub auth: WinRmAuth,
    /// PEM certificate authorities trusted for `winrm+https://` (absolute once loaded); `None` =
    /// the system's roots. Always `None` for `winrm://`.
    pub ca_file: Option<PathBuf>,
    pub operation_timeout: OperationTimeout,
    /// Without a password: the Kerberos principal whose ticket (or keytab keys) log on; `None`
    /// = the credential cache's own principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Without a password: a keytab holding `principal`'s keys, always a `{ file = ... }`
    /// reference (Kerberos reads it; kmsconf never does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keytab: Option<DeclaredSecret>,
    /// The host's service principal; `None` = `HTTP/<host as written in the target>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal: Option<String>,
}

/// WS-Management's `OperationTimeout`: how long the host may hold one request (a Receive long
/// poll) before answering that nothing came. Only built within [`OperationTimeout::RANGE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct OperationTimeout(u32);

impl OperationTimeout {
    /// Seconds the config accepts.
    pub const RANGE: RangeInclusive<u32> = 1..=3600;
    /// 20 seconds, pywinrm's and pypsrp's default (`PT20S`).
    pub const DEFAULT: Self = Self(20);
    /// WinRM's default `MaxTimeoutms` (60000 ms) in seconds: a host that keeps it answers a
    /// longer `OperationTimeout` as if it were this one (MS-WSMV 2.2.4.10, 3.1.4.1.6).
    pub const SERVER_DEFAULT_MAX: u32 = 60;

    /// `None` outside [`Self::RANGE`].
    pub fn from_seconds(seconds: u32) -> Option<Self> {
        Self::RANGE.contains(&seconds).then_some(Self(seconds))
    }

    pub fn seconds(self) -> u32 {
        self.0
    }

    pub fn duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0))
    }
}

impl Default for OperationTimeout {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<u32> for OperationTimeout {
    type Error = TimeoutOutOfRange;
    fn try_from(seconds: u32) -> Result<Self, TimeoutOutOfRange> {
        Self::from_seconds(seconds).ok_or(TimeoutOutOfRange {
            seconds,
            min: *Self::RANGE.start(),
            max: *Self::RANGE.end(),
        })
    }
}

impl From<OperationTimeout> for u32 {
    fn from(timeout: OperationTimeout) -> u32 {
        timeout.0
    }
}
