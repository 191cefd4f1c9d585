//! The application's one error type: what the model, the providers and the targets report,
//! and what the application itself refuses.

use std::path::PathBuf;

use kmsconf_engine::diagnostic::Location;

use kmsconf_model::failure::HostFailure;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] kmsconf_engine::Error),
    #[error(transparent)]
    Model(#[from] kmsconf_model::Error),
    #[error(transparent)]
    Providers(#[from] kmsconf_providers::Error),
    #[error(transparent)]
    Target(#[from] kmsconf_targets::Error),
    /// `--host NAME` names no entry of the config.
    #[error("`--host {name}`: no such host in `{}` (hosts: {known})", config.display())]
    UnknownHost {
        name: String,
        config: PathBuf,
        known: String,
    },
    /// `force-unlock HOST` names no host of the config.
    #[error("no host `{name}` in `{}` (hosts: {known})", config.display())]
    NoSuchHost {
        name: String,
        config: PathBuf,
        known: String,
    },
    /// A saved plan's entries changed since it was made; each problem names its entry.
    #[error("the saved plan is stale; nothing was applied: make a new plan with `kmsconf plan --out`\n{}", list(.0))]
    StalePlan(Vec<Stale>),
    /// A plan file holds only references to secrets, never their values.
    #[error("cannot save a plan that needs a secret written in the config (declared at {declared_at}): a plan file holds only references; use `{{ env = \"VAR\" }}` or `{{ file = \"path\" }}`")]
    LiteralSecret { declared_at: Location },
    /// Discovery would create a missing lab host; export only reads.
    #[error("there is no lab host at `{}` (export reads a host; `kmsconf plan` creates lab hosts)", path.display())]
    NoLabHost { path: PathBuf },
    /// What export read is not a KMS host.
    #[error("`{target}`: {reason}")]
    NotAKmsHost { target: String, reason: String },
    /// `lab clients add` recorded nothing (the lab file could not be changed).
    #[error("the lab host did not record the requests")]
    NotRecorded,
    /// The simulated clients' requests do not fit the lab host.
    #[error("{0}")]
    Clients(String),
}

/// Why one entry of a saved plan makes the plan stale.
#[derive(Debug, thiserror::Error)]
pub enum Stale {
    /// The entry's state (or a secret its changes read) is not what the plan was made from.
    #[error("host `{host}` changed since the plan was made:\n  {}", diffs.join("\n  "))]
    Changed { host: String, diffs: Vec<String> },
    /// The entry could not be read again.
    #[error("host `{host}`: {reason}")]
    Unread { host: String, reason: HostFailure },
}

fn list(problems: &[Stale]) -> String {
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    lines.join("\n")
}
