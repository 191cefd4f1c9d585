//! The `[hosts.NAME.winrm]` table: how kmsconf logs on to a `winrm://` or `winrm+https://` host.
//! It is read into the target, so the target alone (as a saved plan holds it) says how to connect.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::dns::convert_principal;
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
            let winrm = Box::new(convert_winrm(ctx, name, (https, &host), table));
            TargetSpec::WinRm {
                https,
                user,
                host,
                port,
                winrm,
            }
        }
        (target @ TargetSpec::WinRm { .. }, None) => {
            ctx.error(target_at, format!("host `{name}` is reached over WinRM, which needs a `[hosts.{name}.winrm]` table: `password = {{ env = \"VAR\" }}` (or `{{ file = \"path\" }}`) to log on with the account's password, or `auth = \"kerberos\"` to log on with a Kerberos ticket"));
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
        TargetSpec::ActiveDirectory { .. } => "ldap://",
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
    let password = wire
        .password
        .as_ref()
        .and_then(|p| convert_password(ctx, p));
    let auth = wire
        .auth
        .as_ref()
        .map_or(WinRmAuth::default(), |a| *a.get());
    if let Some(a) = wire.auth.as_ref().filter(|_| !https) {
        check_auth_over_http(ctx, a);
    }
    warn_kerberos_to_an_address(ctx, host, table, auth);
    let ticket = convert_ticket(ctx, name, table, auth);
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
        principal: ticket.principal,
        keytab: ticket.keytab,
        service_principal: ticket.service_principal,
    }
}

/// Kerberos (`auth = "kerberos"`, or a ticket: no `password` and not `ntlm` or `basic`) asks
/// for `HTTP/<host as written>`: with an IP address there, unless `service_principal` names the
/// host's, the KDC knows no such principal (an SPN is registered under the host's names).
fn warn_kerberos_to_an_address(ctx: &mut Ctx, host: &str, table: &At<WinRmWire>, auth: WinRmAuth) {
    let wire = table.get();
    let ticket = wire.password.is_none() && auth == WinRmAuth::Negotiate;
    if wire.service_principal.is_some()
        || !(auth == WinRmAuth::Kerberos || ticket)
        || host.trim_matches(['[', ']']).parse::<IpAddr>().is_err()
    {
        return;
    }
    let (at, how) = match &wire.auth {
        Some(a) if auth == WinRmAuth::Kerberos => (a.start(), "`auth = \"kerberos\"`"),
        _ => (table.start(), "a Kerberos ticket (no `password`)"),
    };
    ctx.warn(at, format!("{how} with the IP address `{host}` as the host: Kerberos asks the KDC for the service principal `HTTP/{host}`, and a host's SPNs are registered under its DNS names, so unless one was registered for the address it fails; write the host's DNS name in the target, or set `service_principal`"));
}

/// What logs on without a password, checked against the method and the password.
#[derive(Default)]
struct Ticket {
    principal: Option<String>,
    keytab: Option<DeclaredSecret>,
    service_principal: Option<String>,
}

/// `principal`, `keytab` and `service_principal`, and whether the method can log on with what
/// the table gives: `ntlm` and `basic` need the password, a keytab needs its principal, and a
/// password excludes a ticket's settings.
fn convert_ticket(ctx: &mut Ctx, name: &str, table: &At<WinRmWire>, auth: WinRmAuth) -> Ticket {
    let wire = table.get();
    let password_only = matches!(auth, WinRmAuth::Ntlm | WinRmAuth::Basic);
    if password_only && wire.password.is_none() {
        ctx.error(table.start(), format!("`[hosts.{name}.winrm]` has no `password`, which `auth = \"{auth}\"` logs on with: add `password = {{ env = \"VAR\" }}` or `{{ file = \"path\" }}`, or use `auth = \"kerberos\"` with a Kerberos ticket or keytab"));
    }
    let refuse = |ctx: &mut Ctx, at: usize, key: &str| {
        if password_only {
            ctx.error(at, format!("`{key}` is for Kerberos, and `auth = \"{auth}\"` logs on with the password: remove `{key}`, or use `auth = \"kerberos\"` (or `negotiate`) without `password`"));
        } else if wire.password.is_some() {
            ctx.error(at, format!("`{key}` and `password` exclude each other: with `password` kmsconf logs on as the target's account; remove `password` to log on with a Kerberos ticket or keytab"));
        }
    };
    if let Some(p) = &wire.principal {
        refuse(ctx, p.start(), "principal");
    }
    if let Some(k) = &wire.keytab {
        refuse(ctx, k.start(), "keytab");
        if wire.principal.is_none() {
            ctx.error(k.start(), "`keytab` needs `principal`: name the principal whose keys it holds (`principal = \"svc-kmsconf@CORP.EXAMPLE\"`)");
        }
    }
    if let Some(s) = wire
        .service_principal
        .as_ref()
        .filter(|_| auth == WinRmAuth::Basic)
    {
        ctx.error(s.start(), "`service_principal` is for Kerberos, and `auth = \"basic\"` sends the password: remove it");
    }
    let ticket = wire.password.is_none() && !password_only;
    if ticket && cfg!(windows) {
        ctx.error(table.start(), format!("`[hosts.{name}.winrm]` has no `password`, and kmsconf takes Kerberos tickets through MIT Kerberos, which it does not use on Windows: add `password`, or run kmsconf on Linux"));
    }
    if ticket && super::kerberos::STATIC_BUILD {
        ctx.error(
            table.start(),
            super::kerberos::static_build_error(
                &format!("`[hosts.{name}.winrm]` has no `password`: its Kerberos ticket"),
                Some("add `password`"),
            ),
        );
    }
    Ticket {
        principal: wire
            .principal
            .as_ref()
            .and_then(|p| convert_principal(ctx, "principal", p, false)),
        keytab: wire.keytab.as_ref().and_then(|k| convert_keytab(ctx, k)),
        service_principal: wire
            .service_principal
            .as_ref()
            .and_then(|p| convert_principal(ctx, "service_principal", p, true)),
    }
}

/// A keytab is a file Kerberos reads: `{ file = "path" }` only.
fn convert_keytab(ctx: &mut Ctx, wire: &At<SecretWire>) -> Option<DeclaredSecret> {
    match wire.get() {
        SecretWire::File { .. } => Some(convert_secret(ctx, "the keytab", wire)),
        _ => {
            ctx.error(
                wire.start(),
                "`keytab` must be `{ file = \"path\" }`: Kerberos reads a keytab from a file",
            );
            None
        }
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

    fn warnings_of(host: &str, winrm: &str) -> Vec<String> {
        let text = format!(
            "[hosts.kms01]\ntarget = \"winrm://alice@{host}\"\n[hosts.kms01.winrm]\n{winrm}\n"
        );
        let config = Config::parse(Path::new("kmsconf.toml"), &text).expect("valid");
        config.warnings.iter().map(|w| w.to_string()).collect()
    }

    /// Kerberos to a host written as an IP address asks for `HTTP/<address>`: a warning
    /// whenever Kerberos logs on (`kerberos`, or a ticket under `negotiate`), none when
    /// `service_principal` names the host's or the password logs on.
    #[test]
    fn kerberos_to_an_ip_address_is_a_warning_unless_the_spn_is_named() {
        // a ticket (no `password`) is refused on Windows, where kmsconf has no MIT Kerberos:
        // there only a password logs on with Kerberos
        let tickets = |cases: Vec<(&'static str, &'static str)>| {
            if cfg!(windows) {
                Vec::new()
            } else {
                cases
            }
        };
        let mut warned = vec![(
            "127.0.0.1",
            "auth = \"kerberos\"\npassword = { env = \"PW\" }",
        )];
        warned.extend(tickets(vec![
            ("127.0.0.1", "auth = \"kerberos\""),
            ("127.0.0.1", ""),
            ("[fd00::3]", "auth = \"negotiate\""),
        ]));
        for (host, winrm) in warned {
            let w = warnings_of(host, winrm);
            assert_eq!(w.len(), 1, "{host} {winrm}: {w:?}");
            assert!(
                w[0].contains("the service principal `HTTP/")
                    && w[0].contains("or set `service_principal`"),
                "{}",
                w[0]
            );
        }
        let mut quiet = vec![
            ("127.0.0.1", "password = { env = \"PW\" }"),
            (
                "127.0.0.1",
                "auth = \"kerberos\"\npassword = { env = \"PW\" }\nservice_principal = \"HTTP/kms01.corp.example\"",
            ),
        ];
        quiet.extend(tickets(vec![
            (
                "127.0.0.1",
                "service_principal = \"HTTP/kms01.corp.example\"",
            ),
            ("kms01.corp.example", "auth = \"kerberos\""),
            ("kms01.corp.example", ""),
        ]));
        for (host, winrm) in quiet {
            let w = warnings_of(host, winrm);
            assert!(w.is_empty(), "{host} {winrm}: {w:?}");
        }
    }

    /// A `service_principal` that is no `SERVICE/host` is refused with a WinRM host's SPN as
    /// the example, not a DNS server's.
    #[test]
    fn a_malformed_service_principal_is_shown_a_winrm_example() {
        let text = "[hosts.kms01]\ntarget = \"winrm://alice@kms01.corp.example\"\n[hosts.kms01.winrm]\nauth = \"kerberos\"\nservice_principal = \"kms01\"\n";
        let e = Config::parse(Path::new("kmsconf.toml"), text)
            .expect_err("malformed")
            .to_string();
        assert!(
            e.contains("kmsconf.toml:5:21:")
                && e.contains("(`HTTP/kms01.corp.example@CORP.EXAMPLE`)"),
            "{e}"
        );
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
