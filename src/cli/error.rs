//! The binary's error: what the libraries report, plus usage errors, as messages a person can
//! act on.

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Model(#[from] kmsconf_model::Error),
    #[error(transparent)]
    App(#[from] kmsconf_app::Error),
    #[error("{0}")]
    Message(String),
}

impl CliError {
    /// The config diagnostics, printed as they are (`FILE:LINE:COL: message`) with an excerpt.
    pub fn diagnostics(&self) -> Option<&[kmsconf_app::engine::Diagnostic]> {
        match self {
            Self::Model(kmsconf_model::Error::Invalid(d))
            | Self::App(kmsconf_app::Error::Model(kmsconf_model::Error::Invalid(d))) => Some(d),
            _ => None,
        }
    }
}
