//! The model's one error type: a config file that cannot be read or is invalid, and each
//! module's own error (a target, a key, a duration, a setting value) joined with `#[from]`.

use kmsconf_engine::diagnostic::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] kmsconf_engine::Error),
    /// The configuration has one or more errors; each carries its file, line and column.
    #[error("{}", render_diagnostics(.0))]
    Invalid(Vec<Diagnostic>),
    #[error(transparent)]
    Target(#[from] crate::config::TargetError),
    #[error(transparent)]
    HostName(#[from] crate::config::HostNameError),
    #[error(transparent)]
    Timeout(#[from] crate::config::TimeoutOutOfRange),
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    #[error(transparent)]
    Duration(#[from] crate::clock::DurationError),
    #[error(transparent)]
    Setting(#[from] crate::settings::SettingError),
    #[error(transparent)]
    NotAKmsHost(#[from] crate::state::NotAKmsHost),
}

fn render_diagnostics(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
