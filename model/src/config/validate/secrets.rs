//! Secret references (`{ env = "VAR" }`, `{ file = "path" }` or, with a warning, a literal):
//! checked for form here; their values are read only where a check needs them.

use kmsconf_engine::diagnostic::quoted;
use std::path::PathBuf;

use super::Ctx;
use crate::config::wire::{At, SecretWire};
use kmsconf_engine::secret::{DeclaredSecret, Secret, SecretSource};

pub(super) fn convert_secret(ctx: &mut Ctx, what: &str, wire: &At<SecretWire>) -> DeclaredSecret {
    let source = match wire.get() {
        SecretWire::Env { env } => {
            // no variable can have an empty name or one with `=` or NUL: it could never be set
            if env.is_empty() {
                ctx.error(
                    wire.start(),
                    format!("{what}: the `env` variable name is empty"),
                );
            } else if env.contains(['=', '\0']) {
                ctx.error(
                    wire.start(),
                    format!(
                        "{what}: {} is not an environment variable name",
                        quoted(env)
                    ),
                );
            }
            SecretSource::Env(env.clone())
        }
        SecretWire::File { file } => {
            if file.trim().is_empty() {
                ctx.error(wire.start(), format!("{what}: the `file` path is empty"));
            }
            SecretSource::File(PathBuf::from(file)).rooted(ctx.dir)
        }
        SecretWire::Literal(value) => {
            ctx.warn(
                wire.start(),
                format!("{what} is written in the config; use `{{ env = \"VAR\" }}` or `{{ file = \"path\" }}` so it stays out of Git"),
            );
            SecretSource::Literal(kmsconf_engine::secret::Secret::new(value.clone()))
        }
    };
    DeclaredSecret {
        source,
        declared_at: ctx.at(wire.start()),
    }
}

/// A secret whose value has the wrong form. Written in the config, it is an error of the config;
/// read from a variable or a file, it is a warning here, and planning fails only the entry that
/// needs it, as it does for a secret that is missing.
pub(super) fn malformed(ctx: &mut Ctx, offset: usize, declared: &DeclaredSecret, message: String) {
    if declared.source.is_literal() {
        ctx.error(offset, message);
    } else {
        ctx.warn(
            offset,
            format!("{message}; `plan` and `apply` fail the entry that needs it until it is fixed"),
        );
    }
}

/// The value of a secret where it can be read now, for its form to be checked. An unset variable
/// or a missing file is `None` (it is checked when it is needed); so is a value too short to be
/// a secret, which is reported here, at `offset`, as [`malformed`] values are.
pub(super) fn readable(
    ctx: &mut Ctx,
    offset: usize,
    declared: &DeclaredSecret,
    what: &str,
) -> Option<Secret> {
    match declared.source.resolve(what) {
        Ok(secret) => Some(secret),
        Err(kmsconf_engine::Error::SecretTooShort { message, .. }) => {
            let message = format!(
                "{what} ({}) is too short: {message}",
                declared.source.describe()
            );
            malformed(ctx, offset, declared, message);
            None
        }
        Err(_) => None,
    }
}
