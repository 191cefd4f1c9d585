//! The binary's error: what the libraries report, plus usage errors, as messages a person can
//! act on.

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Model(#[from] kmsconf_model::Error),
    /// Boxed: the application's error carries whole host and plan-file reports.
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
        let model = match self {
            Self::Model(e) => e,
            Self::App(e) => match &**e {
                kmsconf_app::Error::Model(e) => e,
                _ => return None,
            },
            Self::Message(_) => return None,
        };
        match model {
            kmsconf_model::Error::Invalid(d) => Some(d),
            _ => None,
        }
    }
}
