//! `kmsconf export`: discovers one host and builds the config that reproduces it (keys as
//! `{ env = ... }` placeholders). The binary prints the TOML and the variables to set.

use kmsconf_engine::diagnostic::Location;
use kmsconf_engine::secret::{DeclaredSecret, SecretSource};
use kmsconf_model::config::TargetSpec;
use kmsconf_providers::{export, registry};
use kmsconf_targets::Connect;

use crate::Error;

pub use export::{host_name, Export, WINRM_PASSWORD_VARIABLE};

/// Reads the host at `spec` (written `target` on the command line) and exports it as `name`,
/// by default its computer name in lowercase. A missing lab host is an error: discovery would
/// create it, and export only reads.
pub fn run(
    target: &str,
    spec: &TargetSpec,
    name: Option<&str>,
    connect: &Connect,
) -> Result<Export, Error> {
    if let TargetSpec::Lab { path } = spec {
        if !path.exists() {
            return Err(Error::NoLabHost { path: path.clone() });
        }
    }
    // until discovery gives the computer name, messages name the host by its target
    let label = name.unwrap_or(target);
    let spec = &password_from_variable(spec);
    let opened = kmsconf_targets::open(label, spec, connect)?;
    let state = opened
        .discover()?
        .state
        .into_host()
        .map_err(|reason| Error::NotAKmsHost {
            target: target.to_string(),
            reason: reason.to_string(),
        })?;
    let name = name.map_or_else(|| host_name(&state.computer_name), str::to_string);
    Ok(registry::export(&name, target, &state))
}

/// A WinRM target given on the command line logs on with the password in
/// [`WINRM_PASSWORD_VARIABLE`] when that is set, else (`negotiate`) with a Kerberos ticket from
/// the credential cache.
fn password_from_variable(spec: &TargetSpec) -> TargetSpec {
    let mut spec = spec.clone();
    if let TargetSpec::WinRm { winrm, .. } = &mut spec {
        let source = SecretSource::Env(WINRM_PASSWORD_VARIABLE.into());
        if source.is_available() {
            winrm.password = Some(DeclaredSecret {
                source,
                declared_at: Location {
                    file: "--target".into(),
                    line: 1,
                    column: 1,
                },
            });
        }
    }
    spec
}
