//! The binary's error: what the libraries report, plus usage errors, as messages a person can
//! act on.

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Model(#[from] kmsconf_model::Error),
    /// Boxed: the application's error is large, and every command returns this one.
    #[error(transparent)]
    App(Box<kmsconf_app::Error>),
    #[error("{0}")]
    Message(String),
}

impl From<kmsconf_app::Error> for CliError {
    fn from(e: kmsconf_app::Error) -> Self {
        Self::App(Box::new(e))
    }
}

impl CliError {
    /// The config diagnostics, printed as they are (`FILE:LINE:COL: message`) with an excerpt.
    pub fn diagnostics(&self) -> Option<&[kmsconf_app::engine::Diagnostic]> {
        match self {
            Self::Model(kmsconf_model::Error::Invalid(d)) => Some(d),
            Self::App(e) => match &**e {
                kmsconf_app::Error::Model(kmsconf_model::Error::Invalid(d)) => Some(d),
                _ => None,
            },
            _ => None,
        }
    }
}
