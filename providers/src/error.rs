//! The providers' one error type: a host whose desired and observed state cannot be planned
//! ([`PlanError`], with the host it is about). A loaded plan whose changes do not show what their
//! operations do is a [`ShownMismatch`](crate::shown::ShownMismatch), which the application
//! reports as the plan file's integrity error.

use kmsconf_model::config::ProductId;
use kmsconf_model::keys::KeyError;

/// Both variants are boxed: every planner returns this error, and on Windows the engine's error
/// and `PlanError` are large enough for clippy's `result_large_err`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(Box<kmsconf_engine::Error>),
    /// The host cannot be planned (an edition kmsconf does not know, a key that does not fit).
    #[error("host `{host}`: {source}")]
    Plan {
        host: String,
        #[source]
        source: Box<PlanError>,
    },
}

impl From<kmsconf_engine::Error> for Error {
    fn from(e: kmsconf_engine::Error) -> Self {
        Self::Engine(Box::new(e))
    }
}

/// Why one host cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A declared secret (a host key, a confirmation ID) cannot be read.
    #[error(transparent)]
    Secret(kmsconf_engine::Error),
    /// `from` says where the key was read from (`$KMS_KEY`, a file).
    #[error("the host key of `{product}` ({from}) is malformed: {error}")]
    HostKey {
        product: ProductId,
        from: String,
        error: KeyError,
    },
    #[error("the confirmation ID of `{product}` ({from}) is malformed: {error}")]
    ConfirmationId {
        product: ProductId,
        from: String,
        error: KeyError,
    },
    #[error("`{product}` needs the {name} KMS host license pack, which is not installed on the host: set `license_pack` to where the host can get it")]
    LicensePack { product: ProductId, name: String },
    /// `settings` are the gated setting keys, each in backticks.
    #[error("the KMS service settings {settings} need an installed KMS host key (slmgr.vbs sets them only where a product has IsKeyManagementServiceMachine), and this host has none: declare `[hosts.{host}.products.windows]` with its `host_key`")]
    SettingsNeedHostKey { settings: String, host: String },
    #[error("the host did not report the activation ID of its {product} KMS host key, and kmsconf uninstalls a key only by its activation ID (`slmgr.vbs /upk <activation ID>`; without one, slmgr.vbs may remove other keys too)")]
    NoActivationId { product: String },
    /// `profiles` as Windows lists them (`Domain, Private`).
    #[error("the configured firewall profiles {profiles} have no rule of group `{group}` on this host, and neither has `{rule}`, which Microsoft's command opens on any profile (`Set-NetFirewallRule -Name {rule} -Profile ...`): kmsconf will not leave a configured profile closed; check the host's built-in rules (`Get-NetFirewallRule -Group '{group}'`) or remove the profiles from `profiles`")]
    ProfileWithoutRule {
        profiles: String,
        group: String,
        rule: String,
    },
    /// `reported`: the host's SKU number, build and caption, as [`crate::retire`] words them.
    #[error("the host reports {reported}, an edition with no KMS client setup key (GVLK) in kmsconf's table (`OperatingSystemSKU` and build in `model/data/windows.toml`, the keys in `model/data/gvlks.toml`), so kmsconf cannot make it a KMS client again: install its KMS client key by hand (`slmgr.vbs /ipk`), or retire it outside kmsconf")]
    NoClientKey { reported: String },
}

impl PlanError {
    /// This error as the error of host `host`'s plan.
    pub fn on(self, host: impl Into<String>) -> Error {
        Error::Plan {
            host: host.into(),
            source: Box::new(self),
        }
    }
}
