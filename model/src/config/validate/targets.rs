//! The `target` key: how kmsconf reaches a host (`lab:PATH`, `replay:PATH`, `local`,
//! `ssh://[user@]host[:port]`, `winrm://user@host[:port]` or `winrm+https://user@host[:port]`),
//! read the same way from a config and from the command line.

use std::net::IpAddr;
use std::path::Path;

use super::{is_host_name, Ctx};
use crate::config::wire::At;
use crate::config::TargetSpec;
use crate::error::TargetError;
use kmsconf_engine::paths::native;

pub(super) fn parse_target(ctx: &mut Ctx, target: &At<String>) -> Option<TargetSpec> {
    match target_from_text(target.get(), ctx.dir) {
        Ok(spec) => Some(spec),
        Err(message) => {
            ctx.error(target.start(), message.to_string());
            None
        }
    }
}

/// Reads a target as written in a config in `dir` (or given on the command line, `dir` being
/// the current directory). A WinRM target gets the default settings: its `[hosts.NAME.winrm]`
/// table is read beside it.
pub(in crate::config) fn target_from_text(
    text: &str,
    dir: &Path,
) -> Result<TargetSpec, TargetError> {
    let text = text.trim();
    if let Some(path) = text.strip_prefix("lab:") {
        return lab_target(text, path, dir);
    }
    if let Some(path) = text.strip_prefix("replay:") {
        return replay_target(text, path, dir);
    }
    if text == "local" {
        if !cfg!(windows) {
            return Err(TargetError::LocalNotWindows);
        }
        return Ok(TargetSpec::Local);
    }
    if let Some(rest) = text.strip_prefix("ssh://") {
        return ssh_target(text, rest);
    }
    for (scheme, https) in [("winrm://", false), ("winrm+https://", true)] {
        if let Some(rest) = text.strip_prefix(scheme) {
            return winrm_target(text, scheme, rest, https);
        }
    }
    Err(TargetError::Unknown {
        target: text.into(),
    })
}

fn lab_target(text: &str, path: &str, dir: &Path) -> Result<TargetSpec, TargetError> {
    if path.is_empty() {
        return Err(TargetError::LabNoPath {
            target: text.into(),
        });
    }
    if path.starts_with('~') {
        // no shell reads the config: `~` would be a folder named `~`
        return Err(TargetError::LabHome {
            target: text.into(),
        });
    }
    Ok(TargetSpec::Lab {
        path: dir.join(native(Path::new(path))),
    })
}

/// A recording to answer from: it must be there, as a file, when the config is read.
fn replay_target(text: &str, path: &str, dir: &Path) -> Result<TargetSpec, TargetError> {
    let path = path.trim();
    let refuse = |reason: String| TargetError::Replay {
        target: text.into(),
        reason,
    };
    if path.is_empty() {
        return Err(refuse(
            "name the recording to answer from, e.g. `replay:recordings/kms01.jsonl`".into(),
        ));
    }
    if path.starts_with('~') {
        return Err(refuse(
            "`~` is not expanded in a config; write the path relative to the config file, or absolute".into(),
        ));
    }
    let full = dir.join(path);
    match std::fs::metadata(&full) {
        Ok(meta) if meta.is_file() => Ok(TargetSpec::Replay { path: full }),
        Ok(_) => Err(refuse(format!("`{path}` is not a file"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(refuse(format!(
            "there is no recording `{path}` (relative to the config file)"
        ))),
        Err(e) => Err(refuse(format!("cannot read the recording `{path}`: {e}"))),
    }
}

fn ssh_target(text: &str, rest: &str) -> Result<TargetSpec, TargetError> {
    // the message does not repeat the target: it would print the password
    if holds_password(rest) {
        return Err(TargetError::SshPassword);
    }
    let (user, host, port) = parse_authority(rest).ok_or_else(|| TargetError::SshInvalid {
        target: text.into(),
    })?;
    Ok(TargetSpec::Ssh { user, host, port })
}

/// A WinRM target names the account kmsconf logs on as: every authentication it offers
/// (Negotiate, NTLM, Kerberos, Basic) is the account's password, which `[hosts.NAME.winrm]`
/// declares.
fn winrm_target(
    text: &str,
    scheme: &str,
    rest: &str,
    https: bool,
) -> Result<TargetSpec, TargetError> {
    if holds_password(rest) {
        return Err(TargetError::WinRmPassword {
            scheme: scheme.into(),
        });
    }
    let invalid = || TargetError::WinRmInvalid {
        target: text.into(),
        scheme: scheme.into(),
    };
    let (user, host, port) = parse_authority(rest).ok_or_else(invalid)?;
    let Some(user) = user else {
        return Err(TargetError::WinRmNoAccount {
            target: text.into(),
            scheme: scheme.into(),
        });
    };
    if !is_account(&user) {
        return Err(invalid());
    }
    Ok(TargetSpec::WinRm {
        https,
        user,
        host,
        port,
        winrm: Box::default(),
    })
}

/// `user:password@host`: the text before the last `@` holds a `:`.
fn holds_password(rest: &str) -> bool {
    rest.rsplit_once('@')
        .is_some_and(|(user, _)| user.contains(':'))
}

/// `user`, `DOMAIN\user` or `user@domain` (a UPN): no blank, no empty part, one qualifier at most.
fn is_account(user: &str) -> bool {
    !user.contains(|c: char| c.is_whitespace() || c.is_control() || c == '/')
        && user.matches(['\\', '@']).count() <= 1
        && user.split(['\\', '@']).all(|part| !part.is_empty())
}

/// `[user@]host[:port]`, an IPv6 host in brackets; `None` when it is not that.
fn parse_authority(rest: &str) -> Option<(Option<String>, String, Option<u16>)> {
    // the last `@` ends the user, as for ssh itself: a domain account is `user@domain@host`
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
        Some(_) => return None,
        None => (None, rest),
    };
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let (h, after) = inner.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse_port(p)?),
            None if after.is_empty() => None,
            None => return None,
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(parse_port(p)?)),
            None => (hostport.to_string(), None),
        }
    };
    let valid = is_host_name(&host) || host.parse::<IpAddr>().is_ok();
    valid.then_some((user, host, port))
}

fn parse_port(text: &str) -> Option<u16> {
    text.parse::<u16>().ok().filter(|p| *p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_targets_take_domain_accounts_and_refuse_passwords() {
        let dir = Path::new("/srv/kms");
        let parsed = |text: &str| target_from_text(text, dir);
        assert_eq!(
            parsed("ssh://admin@corp.example@kms01.corp.example:2222"),
            Ok(TargetSpec::Ssh {
                user: Some("admin@corp.example".into()),
                host: "kms01.corp.example".into(),
                port: Some(2222),
            })
        );
        assert_eq!(
            parsed("ssh://CORP\\admin@kms01"),
            Ok(TargetSpec::Ssh {
                user: Some("CORP\\admin".into()),
                host: "kms01".into(),
                port: None,
            })
        );
        let e = parsed("ssh://admin:s3cret@kms01")
            .expect_err("a password")
            .to_string();
        assert!(
            e.contains("must not hold a password") && !e.contains("s3cret"),
            "{e}"
        );
        assert!(parsed("ssh://@kms01").is_err());
    }

    #[test]
    fn ssh_targets_show_ipv6_hosts_in_brackets() {
        let dir = Path::new("/srv/kms");
        for text in [
            "ssh://admin@[::1]:2222",
            "ssh://[fe80::1]",
            "ssh://kms01:22",
        ] {
            let spec = target_from_text(text, dir).expect(text);
            assert_eq!(spec.to_string(), text);
            assert_eq!(target_from_text(&spec.to_string(), dir), Ok(spec));
        }
    }

    fn winrm(https: bool, user: &str, host: &str, port: Option<u16>) -> TargetSpec {
        TargetSpec::WinRm {
            https,
            user: user.into(),
            host: host.into(),
            port,
            winrm: Box::default(),
        }
    }

    #[test]
    fn winrm_targets_take_each_account_form_and_show_as_written() {
        let dir = Path::new("/srv/kms");
        for (text, want) in [
            (
                r"winrm://CORP\admin@kms01",
                winrm(false, r"CORP\admin", "kms01", None),
            ),
            (
                "winrm://admin@corp.example@kms01.corp.example:15985",
                winrm(
                    false,
                    "admin@corp.example",
                    "kms01.corp.example",
                    Some(15985),
                ),
            ),
            (
                "winrm+https://admin@[::1]:5986",
                winrm(true, "admin", "::1", Some(5986)),
            ),
            (
                "winrm+https://svc-kms@10.0.0.5",
                winrm(true, "svc-kms", "10.0.0.5", None),
            ),
        ] {
            let spec = target_from_text(text, dir).expect(text);
            assert_eq!(spec, want, "{text}");
            assert_eq!(spec.to_string(), text);
        }
    }

    #[test]
    fn winrm_targets_need_an_account_and_never_hold_a_password() {
        let dir = Path::new("/srv/kms");
        let e = target_from_text(r"winrm://CORP\admin:s3cret@kms01", dir)
            .expect_err("password")
            .to_string();
        assert!(
            e.contains("must not hold a password")
                && e.contains("[hosts.NAME.winrm]")
                && !e.contains("s3cret"),
            "{e}"
        );
        let e = target_from_text("winrm+https://kms01:5986", dir)
            .expect_err("no account")
            .to_string();
        assert!(e.contains("names no account"), "{e}");
        for bad in [
            "winrm://@kms01",
            r"winrm://CORP\@kms01",
            r"winrm://\admin@kms01",
            r"winrm://CORP\admin@corp@kms01",
            "winrm://admin@kms01:0",
            "winrm://admin@kms01/wsman",
            "winrm://ad min@kms01",
        ] {
            let e = target_from_text(bad, dir).expect_err(bad).to_string();
            assert!(e.contains("is not a valid winrm target"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_winrm_target_is_saved_in_a_plan_with_its_settings() {
        let spec = winrm(true, "admin", "kms01", Some(5986));
        let json = serde_json::to_string(&spec).expect("serializes");
        assert!(json.starts_with(r#"{"winrm":{"https":true"#), "{json}");
        assert!(json.contains(r#""operation_timeout":20"#), "{json}");
        let back: TargetSpec = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, spec);
        let out_of_range = json.replace(r#""operation_timeout":20"#, r#""operation_timeout":0"#);
        assert!(serde_json::from_str::<TargetSpec>(&out_of_range).is_err());
    }
}
