//! The `[hosts.NAME.winrm]` table: how kmsconf logs on to a `winrm://` or `winrm+https://` host.
//! It is read into the target, so the target alone (as a saved plan holds it) says how to connect.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::secrets::{check_value, convert_secret};
use super::Ctx;
use crate::config::wire::{At, SecretWire, WinRmWire};
use crate::config::{OperationTimeout, TargetSpec, WinRmAuth, WinRmSettings};
use kmsconf_engine::paths::native;
use kmsconf_engine::secret::DeclaredSecret;

/// A WinRM target with its table's settings; any other target must have no table.
pub(super) fn with_winrm_settings(
    ctx: &mut Ctx,
    name: &str,
    target: TargetSpec,
    target_at: usize,
    table: Option<&At<WinRmWire>>,
) -> TargetSpec {
    match (target, table) {
        (
            TargetSpec::WinRm {
                https,
                user,
                host,
                port,
                ..
            },
            Some(table),
        ) => {
            let winrm = convert_winrm(ctx, name, (https, &host), table);
            TargetSpec::WinRm {
                https,
                user,
                host,
                port,
                winrm,
            }
        }
        (target @ TargetSpec::WinRm { .. }, None) => {
            ctx.error(target_at, format!("host `{name}` is reached over WinRM, which logs on with the account's password: declare it in `[hosts.{name}.winrm]` as `password = {{ env = \"VAR\" }}` or `{{ file = \"path\" }}`"));
            target
        }
        (target, Some(table)) => {
            ctx.error(table.start(), format!("`[hosts.{name}.winrm]` is for a `winrm://` or `winrm+https://` target, and host `{name}` is reached through `{}`: remove the table or change the target", scheme(&target)));
            target
        }
        (target, None) => target,
    }
}

/// The kind of a target as its text starts (`lab:`, `ssh://`), without its path or account.
fn scheme(target: &TargetSpec) -> &'static str {
    match target {
        TargetSpec::Lab { .. } => "lab:",
        TargetSpec::Local => "local",
        TargetSpec::Ssh { .. } => "ssh://",
        TargetSpec::WinRm { https: false, .. } => "winrm://",
        TargetSpec::WinRm { https: true, .. } => "winrm+https://",
        TargetSpec::Dns { .. } => "dns:",
        TargetSpec::Replay { .. } => "replay:",
    }
}

/// `(https, host)`: what the table's checks need of the target.
fn convert_winrm(
    ctx: &mut Ctx,
    name: &str,
    (https, host): (bool, &str),
    table: &At<WinRmWire>,
) -> WinRmSettings {
    let wire = table.get();
    let password = match &wire.password {
        Some(p) => convert_password(ctx, p),
        None => {
            ctx.error(table.start(), format!("`[hosts.{name}.winrm]` has no `password`: kmsconf logs on with the account's password (NTLM, Kerberos or Basic); add `password = {{ env = \"VAR\" }}` or `{{ file = \"path\" }}`"));
            None
        }
    };
    let auth = wire
        .auth
        .as_ref()
        .map_or(WinRmAuth::default(), |a| *a.get());
    if let Some(a) = wire.auth.as_ref().filter(|_| !https) {
        check_auth_over_http(ctx, a);
    }
    if let Some(a) = wire
        .auth
        .as_ref()
        .filter(|a| *a.get() == WinRmAuth::Kerberos)
    {
        if host.parse::<IpAddr>().is_ok() {
            ctx.warn(a.start(), format!("`auth = \"kerberos\"` with the IP address `{host}` as the host: Kerberos finds the service principal (`HTTP/NAME`) by the host's DNS name, so unless an SPN was registered for the address it fails; write the host's DNS name in the target"));
        }
    }
    WinRmSettings {
        password,
        auth,
        ca_file: wire
            .ca_file
            .as_ref()
            .and_then(|c| convert_ca_file(ctx, https, c)),
        operation_timeout: wire
            .operation_timeout
            .as_ref()
            .map_or(OperationTimeout::DEFAULT, |t| convert_timeout(ctx, t)),
    }
}

/// A reference only: the settings travel in saved plans, which must never hold the value.
fn convert_password(ctx: &mut Ctx, wire: &At<SecretWire>) -> Option<DeclaredSecret> {
    if let SecretWire::Literal(_) = wire.get() {
        ctx.error(wire.start(), "the WinRM password must not be written in the config: saved plans carry the host's WinRM settings, and would carry it too; use `password = { env = \"VAR\" }` or `{ file = \"path\" }`");
        return None;
    }
    let what = "the WinRM password";
    let declared = convert_secret(ctx, what, wire);
    // read now only to refuse one too short to redact; an unset variable is checked on connect
    check_value(ctx, wire.start(), &declared, what, |_| None);
    Some(declared)
}

fn check_auth_over_http(ctx: &mut Ctx, auth: &At<WinRmAuth>) {
    if !auth.get().seals_messages() {
        ctx.error(auth.start(), "`auth = \"basic\"` needs a `winrm+https://` target: Basic sends the password in clear and cannot seal messages, and kmsconf sends nothing unsealed over `winrm://` (HTTP); use `negotiate`, `ntlm` or `kerberos`, or reach the host over HTTPS");
    }
}

fn convert_ca_file(ctx: &mut Ctx, https: bool, ca_file: &At<String>) -> Option<PathBuf> {
    if !https {
        ctx.error(ca_file.start(), "`ca_file` needs a `winrm+https://` target: over `winrm://` (HTTP) there is no TLS certificate to check");
        return None;
    }
    if ca_file.get().trim().is_empty() {
        ctx.error(ca_file.start(), "`ca_file` is empty: name a PEM file of certificate authorities, relative to the config file");
        return None;
    }
    Some(ctx.dir.join(native(Path::new(ca_file.get()))))
}

fn convert_timeout(ctx: &mut Ctx, timeout: &At<i64>) -> OperationTimeout {
    let seconds = *timeout.get();
    match u32::try_from(seconds)
        .ok()
        .and_then(OperationTimeout::from_seconds)
    {
        Some(t) => {
            if t.seconds() > OperationTimeout::SERVER_DEFAULT_MAX {
                ctx.warn(timeout.start(), format!("`operation_timeout` = {seconds} is above {max} seconds, the default of the host's WinRM setting `MaxTimeoutms` ({max}000): a host that keeps it waits at most {max} seconds per request whatever kmsconf asks; raise `MaxTimeoutms` on the host (`winrm set winrm/config @{{MaxTimeoutms=\"{seconds}000\"}}`) or lower `operation_timeout`", max = OperationTimeout::SERVER_DEFAULT_MAX));
            }
            t
        }
        None => {
            let range = OperationTimeout::RANGE;
            ctx.error(
                timeout.start(),
                format!(
                    "`operation_timeout` = {seconds} is out of range: {} to {} seconds",
                    range.start(),
                    range.end()
                ),
            );
            OperationTimeout::DEFAULT
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn warnings(timeout: u32) -> Vec<String> {
        let text = format!(
            "[hosts.kms01]\ntarget = \"winrm+https://CORP\\\\admin@kms01.corp.example\"\n[hosts.kms01.winrm]\npassword = {{ env = \"PW\" }}\noperation_timeout = {timeout}\n"
        );
        let config = Config::parse(Path::new("kmsconf.toml"), &text).expect("valid");
        config.warnings.iter().map(|w| w.to_string()).collect()
    }

    /// WinRM's default `MaxTimeoutms` caps what a host waits: above it is a warning naming the
    /// setting, at it nothing.
    #[test]
    fn an_operation_timeout_above_winrms_default_max_is_a_warning_naming_it() {
        assert!(warnings(60).is_empty(), "{:?}", warnings(60));
        let w = warnings(61);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("`operation_timeout` = 61 is above 60 seconds")
                && w[0].contains("`MaxTimeoutms` (60000)")
                && w[0].contains("MaxTimeoutms=\"61000\""),
            "{}",
            w[0]
        );
    }
}
