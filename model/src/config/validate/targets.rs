//! The `target` key: how kmsconf reaches a host (`lab:PATH`, `local` or
//! `ssh://[user@]host[:port]`), read the same way from a config and from the command line.

use std::net::IpAddr;
use std::path::Path;

use super::{is_host_name, Ctx};
use crate::config::wire::At;
use crate::config::TargetSpec;
use kmsconf_engine::diagnostic::quoted;

pub(super) fn parse_target(ctx: &mut Ctx, target: &At<String>) -> Option<TargetSpec> {
    match target_from_text(target.get(), ctx.dir) {
        Ok(spec) => Some(spec),
        Err(message) => {
            ctx.error(target.start(), message);
            None
        }
    }
}

/// Reads a target as written in a config in `dir` (or given on the command line, `dir` being
/// the current directory).
pub(in crate::config) fn target_from_text(text: &str, dir: &Path) -> Result<TargetSpec, String> {
    let text = text.trim();
    let expected = "expected `lab:PATH`, `local` or `ssh://[user@]host[:port]`";
    if let Some(path) = text.strip_prefix("lab:") {
        if path.is_empty() {
            return Err(format!("target `{text}` has no path; {expected}"));
        }
        if path.starts_with('~') {
            // no shell reads the config: `~` would be a folder named `~`
            return Err(format!(
                "target {}: `~` is not expanded in a config; write the path relative to the config file, or absolute",
                quoted(text)
            ));
        }
        return Ok(TargetSpec::Lab {
            path: dir.join(path),
        });
    }
    if text == "local" {
        if !cfg!(windows) {
            return Err("target `local` means this machine is the KMS host, but kmsconf is not running on Windows; use `ssh://user@host` to reach a Windows host".into());
        }
        return Ok(TargetSpec::Local);
    }
    if let Some(rest) = text.strip_prefix("ssh://") {
        // the message does not repeat the target: it would print the password
        if rest
            .rsplit_once('@')
            .is_some_and(|(user, _)| user.contains(':'))
        {
            return Err("an ssh target must not hold a password (`user:password@host`): kmsconf runs ssh in batch mode, which never sends one; use key authentication and write `ssh://user@host`".into());
        }
        return parse_ssh(rest).ok_or_else(|| {
            format!(
                "target {} is not a valid ssh target; {expected}",
                quoted(text)
            )
        });
    }
    Err(format!("unknown target {}; {expected}", quoted(text)))
}

fn parse_ssh(rest: &str) -> Option<TargetSpec> {
    // the last `@` ends the user, as for ssh itself: a domain account is `user@domain@host`
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
        Some(_) => return None,
        None => (None, rest),
    };
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let (h, after) = inner.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0)?),
            None if after.is_empty() => None,
            None => return None,
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                Some(p.parse::<u16>().ok().filter(|p| *p > 0)?),
            ),
            None => (hostport.to_string(), None),
        }
    };
    let valid = is_host_name(&host) || host.parse::<IpAddr>().is_ok();
    valid.then_some(TargetSpec::Ssh { user, host, port })
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
        let e = parsed("ssh://admin:s3cret@kms01").expect_err("a password");
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
}
