//! `winrm-service`: the WinRM service's own settings on a host kmsconf reaches over WinRM, read
//! in the same session ([`kmsconf_model::winrm_service`]). Unsealed HTTP allowed, Basic
//! authentication on, or `MaxTimeoutms` below the host's `operation_timeout` are warnings;
//! fewer shells per user than one run opens is a failure.

use kmsconf_model::winrm_service::{WinRmService, SHELLS_PER_RUN};

use super::{Check, Verdict, WINRM_SERVICE};
use crate::failure::HostFailure;

/// One check: `operation_timeout` is the host's `[hosts.NAME.winrm] operation_timeout` in
/// seconds; `reading` what the agent read (or why it could not).
pub fn winrm_service(
    host: &str,
    operation_timeout: u32,
    reading: Result<&WinRmService, &HostFailure>,
) -> Check {
    let service = match reading {
        Ok(service) => service,
        Err(error) => {
            return Check::new(
                host,
                WINRM_SERVICE,
                Verdict::Warning,
                format!(
                    "the WinRM service's settings were not checked: {}",
                    error.message
                ),
            )
            .fix("the agent reads them from the WSMan: drive on the host (Get-Item WSMan:\\localhost\\...): run `Get-ChildItem WSMan:\\localhost -Recurse` there as the same account to see what fails")
            .failure(error.clone());
        }
    };
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    let mut status = Verdict::Ok;
    if service.max_shells_per_user < SHELLS_PER_RUN {
        status = Verdict::Failed;
        problems.push(format!(
            "MaxShellsPerUser is {}: the account cannot open the {SHELLS_PER_RUN} shell a run needs on this host",
            service.max_shells_per_user
        ));
        fixes.push("Set-Item WSMan:\\localhost\\Shell\\MaxShellsPerUser 30 ([MS-WSMV]'s default; Microsoft's WinRM configuration page says 5)");
    }
    let mut warn = |problem: String, fix: &'static str| {
        status = status.max(Verdict::Warning);
        problems.push(problem);
        fixes.push(fix);
    };
    if service.allow_unencrypted {
        warn(
            "AllowUnencrypted is true: clients may send unsealed messages over HTTP".into(),
            "Set-Item WSMan:\\localhost\\Service\\AllowUnencrypted $false (Windows' default)",
        );
    }
    if service.basic {
        warn(
            "Basic authentication is on: a client sends the password itself".into(),
            "Set-Item WSMan:\\localhost\\Service\\Auth\\Basic $false (Windows' default)",
        );
    }
    let wanted_ms = u64::from(operation_timeout) * 1000;
    if service.max_timeout_ms < wanted_ms {
        warn(
            format!(
                "MaxTimeoutms is {}, below this host's operation_timeout ({operation_timeout} s = {wanted_ms} ms): the host caps each wait at {} ms",
                service.max_timeout_ms, service.max_timeout_ms
            ),
            "lower [hosts.NAME.winrm] operation_timeout, or raise Set-Item WSMan:\\localhost\\MaxTimeoutms",
        );
    }
    let summary = service.summary();
    if problems.is_empty() {
        return Check::new(host, WINRM_SERVICE, Verdict::Ok, summary);
    }
    Check::new(
        host,
        WINRM_SERVICE,
        status,
        format!("{} ({summary})", problems.join("; ")),
    )
    .fix(fixes.join("; "))
}

#[cfg(test)]
mod tests {
    use kmsconf_model::winrm_service::{parse, WireWinRmService};

    use super::*;

    /// Changes one setting of Windows' defaults.
    type Spoil = fn(&mut WireWinRmService);

    fn reading(spoil: impl FnOnce(&mut WireWinRmService)) -> WinRmService {
        let mut wire = WireWinRmService::windows_default();
        spoil(&mut wire);
        parse(&wire).expect("parses")
    }

    #[test]
    fn windows_defaults_are_ok_with_a_summary() {
        let check = winrm_service("kms01", 20, Ok(&reading(|_| {})));
        assert_eq!(check.status, Verdict::Ok, "{check:?}");
        assert!(check.detail.contains("MaxShellsPerUser 30"), "{check:?}");
        assert!(check.detail.contains("listeners: HTTP 5985"), "{check:?}");
        assert_eq!(check.fix, None);
    }

    #[test]
    fn each_insecure_setting_is_a_warning_naming_it() {
        let cases: Vec<(Spoil, u32, &str)> = vec![
            (
                |w| w.allow_unencrypted = "true".into(),
                20,
                "AllowUnencrypted",
            ),
            (|w| w.basic = "true".into(), 20, "Basic authentication"),
            (
                |_| {},
                61,
                "below this host's operation_timeout (61 s = 61000 ms)",
            ),
        ];
        for (spoil, timeout, named) in cases {
            let check = winrm_service("kms01", timeout, Ok(&reading(spoil)));
            assert_eq!(check.status, Verdict::Warning, "{check:?}");
            assert!(check.detail.contains(named), "{check:?}");
            assert!(check.fix.is_some());
        }
        // exactly at the cap is fine
        let check = winrm_service("kms01", 60, Ok(&reading(|_| {})));
        assert_eq!(check.status, Verdict::Ok, "{check:?}");
    }

    #[test]
    fn an_unreadable_configuration_is_a_warning_with_the_reason() {
        let error = HostFailure::new(
            kmsconf_model::failure::FailureKind::Remote,
            "WinRM setting MaxTimeoutms is `x`, not a whole number",
        );
        let check = winrm_service("kms01", 20, Err(&error));
        assert_eq!(check.status, Verdict::Warning, "{check:?}");
        assert!(check.detail.contains("MaxTimeoutms is `x`"), "{check:?}");
        assert_eq!(check.error, Some(error));
    }

    #[test]
    fn no_shell_for_the_account_fails_and_keeps_the_warnings() {
        let service = reading(|w| {
            w.max_shells_per_user = "0".into();
            w.basic = "true".into();
        });
        let check = winrm_service("kms01", 20, Ok(&service));
        assert_eq!(check.status, Verdict::Failed, "{check:?}");
        assert!(check.detail.contains("MaxShellsPerUser is 0"), "{check:?}");
        assert!(check.detail.contains("Basic"), "{check:?}");
    }
}
