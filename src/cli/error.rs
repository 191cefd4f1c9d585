//! The binary's error: what the libraries report, plus usage errors, as messages a person can
//! act on.

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Engine(#[from] kmsconf_engine::Error),
    #[error(transparent)]
    Providers(#[from] kmsconf_providers::Error),
    #[error("{0}")]
    Message(String),
}

impl CliError {
    /// Config diagnostics are printed as they are (`FILE:LINE:COL: message`), one per line.
    pub fn is_diagnostics(&self) -> bool {
        matches!(
            self,
            Self::Engine(kmsconf_engine::Error::Invalid(_))
                | Self::Providers(kmsconf_providers::Error::Engine(
                    kmsconf_engine::Error::Invalid(_)
                ))
        )
    }
}
