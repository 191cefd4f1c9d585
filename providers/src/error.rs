//! The providers' one error type: a host whose desired and observed state cannot be planned.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] kmsconf_engine::Error),
    /// The host cannot be planned (an edition kmsconf does not know, a key that does not fit).
    #[error("host `{host}`: {message}")]
    Plan { host: String, message: String },
}
