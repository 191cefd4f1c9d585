//! The binary's error: what the libraries report, plus usage errors, as messages a person can
//! act on.

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Engine(#[from] kmsconf_engine::Error),
    #[error(transparent)]
    Model(#[from] kmsconf_model::Error),
    #[error(transparent)]
    Targets(#[from] kmsconf_targets::Error),
    #[error(transparent)]
    App(#[from] kmsconf_app::Error),
    #[error("{0}")]
    Message(String),
}

impl CliError {
    /// Config diagnostics are printed as they are (`FILE:LINE:COL: message`), one per line.
    pub fn is_diagnostics(&self) -> bool {
        matches!(
            self,
            Self::Model(kmsconf_model::Error::Invalid(_))
                | Self::App(kmsconf_app::Error::Model(kmsconf_model::Error::Invalid(_)))
        )
    }
}
