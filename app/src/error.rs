//! The application's one error type: what the model, the providers and the targets report.

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
        config: std::path::PathBuf,
        known: String,
    },
    /// A saved plan's entries changed since it was made; each problem names its entry.
    #[error("the saved plan is stale; nothing was applied: make a new plan with `kmsconf plan --out`\n{}", .0.join("\n"))]
    StalePlan(Vec<String>),
}
