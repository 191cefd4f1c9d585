//! Secret references (`{ env = "VAR" }`, `{ file = "path" }` or, with a warning, a literal):
//! checked for form here; their values are read only where a check needs them.

use kmsconf_engine::diagnostic::quoted;
use std::path::PathBuf;

use super::Ctx;
use crate::config::wire::{At, SecretWire};
use kmsconf_engine::secret::{too_short, DeclaredSecret, Secret, SecretSource};

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

/// Checks a secret's value where it can be read now: its `form` (the message of a malformed
/// one) first, then its length ([`kmsconf_engine::secret::MIN_CHARS`]), each reported at
/// `offset` as [`malformed`] says. An unset variable or a missing file is checked when it is
/// needed.
pub(super) fn check_value(
    ctx: &mut Ctx,
    offset: usize,
    declared: &DeclaredSecret,
    what: &str,
    form: impl FnOnce(&Secret) -> Option<String>,
) {
    let Ok(value) = declared.source.value(what) else {
        return;
    };
    let describe = declared.source.describe();
    let message = form(&value)
        .map(|m| format!("{what} ({describe}) is malformed: {m}"))
        .or_else(|| {
            too_short(value.expose()).map(|m| format!("{what} ({describe}) is too short: {m}"))
        });
    if let Some(message) = message {
        malformed(ctx, offset, declared, message);
    }
}
