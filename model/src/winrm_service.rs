//! The WinRM service's own settings, as `doctor` check `winrm-service` reads them from a WinRM
//! host (the agent's `read_winrm_service`, from the `WSMan:` drive): whether unsealed HTTP and
//! Basic authentication are allowed, channel-binding hardening, the longest operation timeout,
//! how many shells one account may open, the shells' idle timeout, and the listeners. The agent
//! sends every value as the string the drive shows ([`WireWinRmService`]); every one is host
//! input and checked here. Windows' defaults are rows of the facts table (`[[winrm]]`
//! `service-*-default`, `shell-*-default`, `server-max-timeout-ms-default`).

use serde::{Deserialize, Serialize};

use crate::config::WINRM_HTTP_PORT;
use crate::facts::facts;

/// How many shells one run opens on one host (the WinRM transport keeps one per host).
pub const SHELLS_PER_RUN: u64 = 1;
/// At most this many listeners are read; a host with more is refused as out of shape.
pub const MAX_LISTENERS: usize = 64;

/// The agent's answer: each setting as `(Get-Item WSMan:\localhost\...).Value` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireWinRmService {
    /// `Service\AllowUnencrypted`.
    #[serde(rename = "AllowUnencrypted")]
    pub allow_unencrypted: String,
    /// `Service\Auth\Basic`, `Kerberos`, `Negotiate`, `CredSSP`.
    #[serde(rename = "Basic")]
    pub basic: String,
    #[serde(rename = "Kerberos")]
    pub kerberos: String,
    #[serde(rename = "Negotiate")]
    pub negotiate: String,
    #[serde(rename = "CredSSP")]
    pub credssp: String,
    /// `Service\Auth\CbtHardeningLevel`.
    #[serde(rename = "CbtHardeningLevel")]
    pub cbt_hardening_level: String,
    /// `MaxTimeoutms` (of `winrm/config`), milliseconds.
    #[serde(rename = "MaxTimeoutms")]
    pub max_timeout_ms: String,
    /// `Shell\MaxShellsPerUser` (of `winrm/config/winrs`).
    #[serde(rename = "MaxShellsPerUser")]
    pub max_shells_per_user: String,
    /// `Shell\IdleTimeout`, milliseconds.
    #[serde(rename = "IdleTimeout")]
    pub idle_timeout: String,
    #[serde(rename = "Listeners")]
    pub listeners: Vec<WireListener>,
}

/// One `WSMan:\localhost\Listener\*` container's `Transport`, `Port` and `Enabled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireListener {
    #[serde(rename = "Transport")]
    pub transport: String,
    #[serde(rename = "Port")]
    pub port: String,
    #[serde(rename = "Enabled")]
    pub enabled: String,
}

impl WireWinRmService {
    /// A fresh Windows host's settings (the facts table's defaults) with the one listener
    /// `winrm quickconfig` creates (HTTP on 5985).
    pub fn windows_default() -> Self {
        let f = facts();
        Self {
            allow_unencrypted: f.winrm("service-allow-unencrypted-default").to_string(),
            basic: f.winrm("service-auth-basic-default").to_string(),
            kerberos: f.winrm("service-auth-kerberos-default").to_string(),
            negotiate: f.winrm("service-auth-negotiate-default").to_string(),
            credssp: f.winrm("service-auth-credssp-default").to_string(),
            cbt_hardening_level: f.winrm("service-cbt-hardening-level-default").to_string(),
            max_timeout_ms: f.winrm("server-max-timeout-ms-default").to_string(),
            max_shells_per_user: f.winrm("shell-max-shells-per-user-default").to_string(),
            idle_timeout: f.winrm("shell-idle-timeout-default").to_string(),
            listeners: vec![WireListener {
                transport: "HTTP".into(),
                port: WINRM_HTTP_PORT.to_string(),
                enabled: "true".into(),
            }],
        }
    }
}

/// `CbtHardeningLevel`: how the service treats channel bindings over HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CbtHardening {
    None,
    Relaxed,
    Strict,
}

impl CbtHardening {
    pub fn word(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Relaxed => "Relaxed",
            Self::Strict => "Strict",
        }
    }
}

/// One listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    pub https: bool,
    pub port: u16,
    pub enabled: bool,
}

/// The checked settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinRmService {
    pub allow_unencrypted: bool,
    pub basic: bool,
    pub kerberos: bool,
    pub negotiate: bool,
    pub credssp: bool,
    pub cbt_hardening: CbtHardening,
    pub max_timeout_ms: u64,
    pub max_shells_per_user: u64,
    pub idle_timeout_ms: u64,
    pub listeners: Vec<Listener>,
}

/// A setting that is not what the `WSMan:` drive shows there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WinRmServiceError {
    #[error("WinRM setting {field} is {}, not {expected}", shown(value))]
    Field {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("the host lists {0} WinRM listeners, more than the {MAX_LISTENERS} kmsconf reads")]
    Listeners(usize),
}

/// Host text in backticks, control characters escaped, at most 40 characters.
fn shown(text: &str) -> String {
    let cut: String = text.chars().take(40).collect();
    let more = if text.chars().count() > 40 { "..." } else { "" };
    format!("`{}{more}`", cut.escape_debug())
}

fn field_error(field: &'static str, value: &str, expected: &'static str) -> WinRmServiceError {
    WinRmServiceError::Field {
        field,
        value: value.to_string(),
        expected,
    }
}

fn boolean(field: &'static str, value: &str) -> Result<bool, WinRmServiceError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(field_error(field, value, "true or false")),
    }
}

/// A decimal count as the drive shows it: digits only, at most 20 of them.
fn count(field: &'static str, value: &str) -> Result<u64, WinRmServiceError> {
    let digits =
        !value.is_empty() && value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit());
    digits
        .then(|| value.parse().ok())
        .flatten()
        .ok_or_else(|| field_error(field, value, "a whole number"))
}

fn listener(wire: &WireListener) -> Result<Listener, WinRmServiceError> {
    let https = match wire.transport.to_ascii_uppercase().as_str() {
        "HTTP" => false,
        "HTTPS" => true,
        _ => {
            return Err(field_error(
                "Listener Transport",
                &wire.transport,
                "HTTP or HTTPS",
            ))
        }
    };
    let port = (wire.port.len() <= 5 && wire.port.bytes().all(|b| b.is_ascii_digit()))
        .then(|| wire.port.parse::<u16>().ok())
        .flatten()
        .filter(|p| *p != 0)
        .ok_or_else(|| field_error("Listener Port", &wire.port, "a port 1-65535"))?;
    Ok(Listener {
        https,
        port,
        enabled: boolean("Listener Enabled", &wire.enabled)?,
    })
}

/// Checks the agent's answer: every field must be what the drive shows, or the whole reading
/// is refused (a check on half a configuration would mislead).
pub fn parse(wire: &WireWinRmService) -> Result<WinRmService, WinRmServiceError> {
    if wire.listeners.len() > MAX_LISTENERS {
        return Err(WinRmServiceError::Listeners(wire.listeners.len()));
    }
    let cbt_hardening = match wire.cbt_hardening_level.to_ascii_lowercase().as_str() {
        "none" => CbtHardening::None,
        "relaxed" => CbtHardening::Relaxed,
        "strict" => CbtHardening::Strict,
        _ => {
            return Err(field_error(
                "CbtHardeningLevel",
                &wire.cbt_hardening_level,
                "None, Relaxed or Strict",
            ))
        }
    };
    Ok(WinRmService {
        allow_unencrypted: boolean("AllowUnencrypted", &wire.allow_unencrypted)?,
        basic: boolean("Auth Basic", &wire.basic)?,
        kerberos: boolean("Auth Kerberos", &wire.kerberos)?,
        negotiate: boolean("Auth Negotiate", &wire.negotiate)?,
        credssp: boolean("Auth CredSSP", &wire.credssp)?,
        cbt_hardening,
        max_timeout_ms: count("MaxTimeoutms", &wire.max_timeout_ms)?,
        max_shells_per_user: count("MaxShellsPerUser", &wire.max_shells_per_user)?,
        idle_timeout_ms: count("IdleTimeout", &wire.idle_timeout)?,
        listeners: wire
            .listeners
            .iter()
            .map(listener)
            .collect::<Result<_, _>>()?,
    })
}

impl WinRmService {
    /// One line: the settings in the order `winrm get winrm/config` lists them.
    pub fn summary(&self) -> String {
        let on = |b: bool| if b { "on" } else { "off" };
        let listeners: Vec<String> = self
            .listeners
            .iter()
            .map(|l| {
                let scheme = if l.https { "HTTPS" } else { "HTTP" };
                let off = if l.enabled { "" } else { " (disabled)" };
                format!("{scheme} {}{off}", l.port)
            })
            .collect();
        let listeners = if listeners.is_empty() {
            "none".to_string()
        } else {
            listeners.join(", ")
        };
        format!(
            "AllowUnencrypted {}, Basic {}, Kerberos {}, Negotiate {}, CredSSP {}, \
             CbtHardeningLevel {}, MaxTimeoutms {}, MaxShellsPerUser {}, IdleTimeout {} ms; \
             listeners: {listeners}",
            self.allow_unencrypted,
            on(self.basic),
            on(self.kerberos),
            on(self.negotiate),
            on(self.credssp),
            self.cbt_hardening.word(),
            self.max_timeout_ms,
            self.max_shells_per_user,
            self.idle_timeout_ms,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Changes one setting of Windows' defaults.
    type Spoil = fn(&mut WireWinRmService);

    #[test]
    fn windows_defaults_parse_and_match_the_sources() {
        let s = parse(&WireWinRmService::windows_default()).expect("defaults parse");
        assert!(!s.allow_unencrypted && !s.basic && !s.credssp);
        assert!(s.kerberos && s.negotiate);
        assert_eq!(s.cbt_hardening, CbtHardening::Relaxed);
        assert_eq!(s.max_timeout_ms, 60_000);
        assert_eq!(s.max_shells_per_user, 30);
        assert_eq!(s.idle_timeout_ms, 180_000);
        assert_eq!(
            s.listeners,
            vec![Listener {
                https: false,
                port: 5985,
                enabled: true
            }]
        );
    }

    #[test]
    fn every_field_is_checked() {
        let base = WireWinRmService::windows_default();
        let cases: Vec<(Spoil, &str)> = vec![
            (|w| w.allow_unencrypted = "yes".into(), "AllowUnencrypted"),
            (|w| w.basic = String::new(), "Auth Basic"),
            (|w| w.credssp = "1".into(), "Auth CredSSP"),
            (
                |w| w.cbt_hardening_level = "Loose\u{1b}[2J".into(),
                "CbtHardeningLevel",
            ),
            (|w| w.max_timeout_ms = "-1".into(), "MaxTimeoutms"),
            (|w| w.max_shells_per_user = "1e3".into(), "MaxShellsPerUser"),
            (
                |w| w.idle_timeout = "99999999999999999999999".into(),
                "IdleTimeout",
            ),
            (
                |w| w.listeners[0].transport = "FTP".into(),
                "Listener Transport",
            ),
            (|w| w.listeners[0].port = "0".into(), "Listener Port"),
            (|w| w.listeners[0].port = "65536".into(), "Listener Port"),
            (|w| w.listeners[0].enabled = "on".into(), "Listener Enabled"),
        ];
        for (spoil, field) in cases {
            let mut wire = base.clone();
            spoil(&mut wire);
            let err = parse(&wire).expect_err(field);
            let text = err.to_string();
            assert!(text.contains(field), "{text}");
            assert!(!text.contains('\u{1b}'), "{text}");
        }
    }

    #[test]
    fn values_are_case_insensitive_and_listeners_bounded() {
        let mut wire = WireWinRmService::windows_default();
        wire.basic = "True".into();
        wire.cbt_hardening_level = "STRICT".into();
        wire.listeners[0].transport = "https".into();
        wire.listeners[0].port = "5986".into();
        let s = parse(&wire).expect("parses");
        assert!(s.basic);
        assert_eq!(s.cbt_hardening, CbtHardening::Strict);
        assert!(s.listeners[0].https);
        assert!(s.summary().contains("Basic on"));
        assert!(s.summary().contains("HTTPS 5986"));
        wire.listeners = vec![wire.listeners[0].clone(); MAX_LISTENERS + 1];
        assert_eq!(
            parse(&wire),
            Err(WinRmServiceError::Listeners(MAX_LISTENERS + 1))
        );
    }
}
