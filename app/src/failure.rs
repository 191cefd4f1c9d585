//! The failure report of an entry that got no result ([`HostFailure`], defined with the KMS
//! vocabulary so status can carry it), made from what the targets and the providers report.

pub use kmsconf_model::failure::{FailureKind, HostFailure};

/// The failure a target's error stands for: its kind, and the host's HRESULT where it gave one.
pub fn of_target(e: kmsconf_targets::Error) -> HostFailure {
    describe_target(&e)
}

fn describe_target(e: &kmsconf_targets::Error) -> HostFailure {
    use kmsconf_targets::Error as E;
    let kind = match e {
        E::Unreachable { .. } | E::UnsupportedTarget { .. } => FailureKind::Unreachable,
        E::Refused { .. } => FailureKind::Refused,
        E::Timeout { .. } => FailureKind::Timeout,
        E::ConnectionDropped { .. } => FailureKind::ConnectionDropped,
        E::HostKey { .. } => FailureKind::HostKey,
        E::Certificate { .. } => FailureKind::Certificate,
        E::AuthRefused { .. } => FailureKind::AuthRefused,
        E::Remote { .. } => FailureKind::Remote,
        E::Dns { .. } => FailureKind::Dns,
        E::Ldap { .. } => FailureKind::Refused,
        E::Locate { source, .. } if source.is_dns() => FailureKind::Dns,
        E::Locate { .. } => FailureKind::Unreachable,
        E::Locked { .. } | E::Unlock { .. } => FailureKind::Locked,
        E::LabState { .. } | E::Io { .. } | E::Listen { .. } | E::Replay { .. } | E::Engine(_) => {
            FailureKind::Local
        }
    };
    let code = e.code();
    HostFailure {
        kind,
        code,
        message: e.to_string(),
    }
}

/// The failure of an entry the providers could not plan.
pub fn of_plan(e: kmsconf_providers::Error) -> HostFailure {
    // the message of a planning error already names the host, which the report shows
    let message = match e {
        kmsconf_providers::Error::Plan { source, .. } => source.to_string(),
        other => other.to_string(),
    };
    HostFailure::plan(message)
}

/// The failure of a command that failed as a whole (a host locked by another run stops an
/// apply), for its `--json` document.
pub fn of_run(e: &crate::Error) -> HostFailure {
    match e {
        crate::Error::Target(t) => describe_target(t),
        other => HostFailure::plan(other.to_string()),
    }
}

impl From<crate::Error> for HostFailure {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Target(t) => of_target(t),
            crate::Error::Providers(p) => of_plan(p),
            other => Self::plan(other.to_string()),
        }
    }
}
