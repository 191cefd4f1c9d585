//! Secrets: where they come from, and a type that never shows them.
//!
//! A [`Secret`] redacts itself in `Debug` and `Display` and cannot be serialized, so it cannot reach
//! a plan file, a log line or a trace by accident. A [`SecretSource`] says where to read one
//! (`{ env = "VAR" }`, `{ file = "path" }`, or a literal), and can be written to a plan file
//! because it never holds the value of an env or file secret.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::diagnostic::Location;
use crate::paths::native;
use crate::read::{read_bounded, SECRET};
use crate::Error;

/// A secret value. Shows nothing of itself except through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// Every secret value this process has held (at least [`MIN_CHARS`] long), longest first: a
/// host that quotes one in any message, of any host or batch, has it redacted by [`redact_run`]
/// where the message is shown.
static RUN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The shortest secret kmsconf takes from a config, a variable or a file. Every secret of the
/// run is redacted from everything shown, wherever it stands; a shorter one cannot be: a
/// 3-character password would blank out every word that holds it, and redacting it only as a
/// whole word would print it where a host glues it to other text. So shorter ones are refused
/// ([`SecretSource::resolve`]), and validate says so at the place that declares them.
pub const MIN_CHARS: usize = 6;

const REDACTED: &str = "<redacted>";

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        remember(&value);
        Self(value)
    }

    /// The value, for the one place that must hand it to a host.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why `value` cannot be a secret of the run (see [`MIN_CHARS`]), if it cannot.
pub fn too_short(value: &str) -> Option<String> {
    let chars = value.chars().count();
    (chars < MIN_CHARS).then(|| {
        format!("it is {chars} characters long; kmsconf takes secrets of at least {MIN_CHARS} characters, so that it can redact them wherever a host or server quotes them without blanking out ordinary words")
    })
}

fn remember(value: &str) {
    if value.chars().count() < MIN_CHARS {
        return;
    }
    let mut run = RUN.lock().unwrap_or_else(PoisonError::into_inner);
    if !run.iter().any(|s| s == value) {
        run.push(value.to_string());
        run.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every secret of the run (see [`RUN`]) replaced by `<redacted>`.
pub fn redact_run(text: &str) -> Cow<'_, str> {
    let run = RUN.lock().unwrap_or_else(PoisonError::into_inner);
    redact_with(text, run.iter().map(String::as_str))
}

/// A JSON document with every secret of the run redacted inside its strings, as JSON escapes
/// it; the document stays valid JSON whatever the secret is (a password `true` leaves the
/// literal `true` alone).
pub fn redact_run_json(json: &str) -> Cow<'_, str> {
    let escaped: Vec<String> = {
        let run = RUN.lock().unwrap_or_else(PoisonError::into_inner);
        run.iter()
            .filter_map(|s| serde_json::to_string(s).ok())
            .map(|q| q[1..q.len() - 1].to_string())
            .collect()
    };
    if !escaped.iter().any(|s| json.contains(s.as_str())) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len());
    let mut rest = json;
    // the string literals of the document, each redacted; what lies between them is copied
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..=start]);
        let body = &rest[start + 1..];
        let end = string_end(body);
        out.push_str(&redact_with(
            &body[..end],
            escaped.iter().map(String::as_str),
        ));
        rest = &body[end..];
        if let Some(after) = rest.strip_prefix('"') {
            out.push('"');
            rest = after;
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Where the JSON string whose body starts `body` ends (its closing quote's index).
fn string_end(body: &str) -> usize {
    let mut escaped = false;
    for (i, b) in body.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return i,
            _ => {}
        }
    }
    body.len()
}

fn redact_with<'t, 's>(text: &'t str, secrets: impl Iterator<Item = &'s str>) -> Cow<'t, str> {
    let mut out = Cow::Borrowed(text);
    for secret in secrets {
        if out.contains(secret) {
            out = Cow::Owned(out.replace(secret, REDACTED));
        }
    }
    out
}

/// Where a secret comes from. Serialized into plan files as the reference, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// An environment variable read when the secret is needed.
    Env(String),
    /// A file (absolute once loaded) whose content, trimmed, is the secret.
    File(PathBuf),
    /// A value written in the config itself (accepted with a warning); never serialized.
    #[serde(skip)]
    Literal(Secret),
}

impl SecretSource {
    /// Reads the secret. `what` names it in errors (e.g. `hosts.web01.password`). A leading
    /// UTF-8 byte order mark (Windows PowerShell 5.1's `Set-Content -Encoding UTF8` writes one)
    /// and surrounding whitespace are not part of it.
    /// A value shorter than [`MIN_CHARS`] is refused with [`Error::SecretTooShort`].
    pub fn resolve(&self, what: &str) -> Result<Secret, Error> {
        let secret = self.read(what)?;
        match too_short(secret.expose()) {
            Some(message) => Err(Error::SecretTooShort {
                what: format!("`{what}`"),
                message,
            }),
            None => Ok(secret),
        }
    }

    /// The value whatever its length, for checking its form: a malformed product key is better
    /// told by its form than by its length. What is used is [`Self::resolve`]'s.
    pub fn value(&self, what: &str) -> Result<Secret, Error> {
        self.read(what)
    }

    fn read(&self, what: &str) -> Result<Secret, Error> {
        let err = |message: String| Error::Secret {
            what: format!("`{what}`"),
            message,
        };
        match self {
            Self::Env(var) => match std::env::var(var) {
                Ok(v) if !clean(&v).is_empty() => Ok(Secret::new(clean(&v))),
                Ok(_) => Err(err(format!("environment variable `{var}` is empty"))),
                Err(std::env::VarError::NotPresent) => {
                    Err(err(format!("environment variable `{var}` is not set")))
                }
                Err(std::env::VarError::NotUnicode(_)) => Err(err(format!(
                    "environment variable `{var}` is not valid UTF-8"
                ))),
            },
            Self::File(path) => {
                let bytes = read_bounded(path, SECRET).map_err(|e| err(e.to_string()))?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| err(format!("file `{}` is not valid UTF-8", path.display())))?;
                match clean(&text) {
                    "" => Err(err(format!("file `{}` is empty", path.display()))),
                    value => Ok(Secret::new(value)),
                }
            }
            Self::Literal(secret) => Ok(secret.clone()),
        }
    }

    /// Makes a relative file path relative to `base` (the config file's directory).
    pub fn rooted(self, base: &Path) -> Self {
        match self {
            Self::File(p) if p.is_relative() => Self::File(base.join(native(&p))),
            other => other,
        }
    }

    /// Whether there is a value to read now: the variable is set, the file exists, and what
    /// they hold is not empty (a byte order mark and whitespace alone are empty). A file that
    /// exists but cannot be read counts as there: [`Self::resolve`] says why it fails.
    pub fn is_available(&self) -> bool {
        match self {
            Self::Env(var) => {
                std::env::var_os(var).is_some_and(|v| !clean(&v.to_string_lossy()).is_empty())
            }
            Self::File(path) => match read_bounded(path, SECRET) {
                Ok(bytes) => !clean(&String::from_utf8_lossy(&bytes)).is_empty(),
                Err(Error::Read { source, .. }) => source.kind() != std::io::ErrorKind::NotFound,
                Err(_) => true,
            },
            Self::Literal(_) => true,
        }
    }

    pub fn is_literal(&self) -> bool {
        matches!(self, Self::Literal(_))
    }

    /// How the source is shown to people: `env API_TOKEN`, `file secrets/token`, `literal`.
    pub fn describe(&self) -> String {
        match self {
            Self::Env(var) => format!("env `{var}`"),
            Self::File(path) => format!("file `{}`", path.display()),
            Self::Literal(_) => "a literal in the config".to_string(),
        }
    }
}

/// A secret's text without a leading UTF-8 byte order mark and surrounding whitespace.
fn clean(text: &str) -> &str {
    text.trim_start().trim_start_matches('\u{feff}').trim()
}

/// A secret source together with the place in the config that declared it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredSecret {
    pub source: SecretSource,
    pub declared_at: Location,
}

impl DeclaredSecret {
    pub fn resolve(&self, what: &str) -> Result<Secret, Error> {
        let declared = |what: String| format!("{what} (declared at {})", self.declared_at);
        self.source.resolve(what).map_err(|e| match e {
            Error::Secret { what, message } => Error::Secret {
                what: declared(what),
                message,
            },
            Error::SecretTooShort { what, message } => Error::SecretTooShort {
                what: declared(what),
                message,
            },
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_of_the_run_is_redacted_in_text_and_inside_json_strings() {
        let _one = Secret::new("ONE-SECRET-11111");
        let _two = Secret::new("tw\"o-secret");
        let _short = Secret::new("abc");
        assert_eq!(
            redact_run("a ONE-SECRET-11111 b tw\"o-secret abc"),
            "a <redacted> b <redacted> abc"
        );
        let json = serde_json::json!({ "m": "x tw\"o-secret ONE-SECRET-11111", "ok": true });
        let text = serde_json::to_string(&json).expect("json");
        let shown = redact_run_json(&text);
        let back: serde_json::Value = serde_json::from_str(&shown).expect("still JSON");
        assert_eq!(back["m"], "x <redacted> <redacted>");
        assert_eq!(back["ok"], true);
    }

    const KEY: &str = "a-value-from-a-file";

    #[test]
    fn secrets_never_print_themselves() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
    }
    #[test]
    fn literal_sources_are_not_serialized() {
        let e = serde_json::to_string(&SecretSource::Literal(Secret::new("x")));
        assert!(e.is_err());
        let env = serde_json::to_string(&SecretSource::Env("K".into())).expect("env");
        assert_eq!(env, r#"{"env":"K"}"#);
    }

    #[test]
    fn env_and_file_sources_resolve_and_explain_failures() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("k"), format!("{KEY}\n")).expect("write");
        let f = SecretSource::File("k".into()).rooted(dir.path());
        assert_eq!(f.resolve("k").expect("file").expose(), KEY);
        let missing = SecretSource::Env("KMSCONF_TEST_SURELY_UNSET".into()).resolve("x");
        assert!(missing
            .expect_err("unset")
            .to_string()
            .contains("is not set"));
    }

    #[test]
    fn a_secret_too_short_to_redact_is_refused_where_it_is_read() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("pw"), "pw123\n").expect("write");
        let declared = DeclaredSecret {
            source: SecretSource::File("pw".into()).rooted(dir.path()),
            declared_at: Location {
                file: "kmsconf.toml".into(),
                line: 3,
                column: 12,
            },
        };
        let e = declared
            .resolve("hosts.kms01.winrm.password")
            .expect_err("5 characters");
        assert!(matches!(e, Error::SecretTooShort { .. }), "{e:?}");
        assert_eq!(e.to_string(), "secret `hosts.kms01.winrm.password` (declared at kmsconf.toml:3:12): it is 5 characters long; kmsconf takes secrets of at least 6 characters, so that it can redact them wherever a host or server quotes them without blanking out ordinary words");
        assert!(!e.to_string().contains("pw123"));
        std::fs::write(dir.path().join("pw"), "pw1234\n").expect("write");
        assert_eq!(
            declared.resolve("pw").expect("6 characters").expose(),
            "pw1234"
        );
    }

    #[test]
    fn a_byte_order_mark_and_whitespace_are_not_part_of_a_secret() {
        let dir = tempfile::tempdir().expect("tmp");
        // what Windows PowerShell 5.1's `Set-Content -Encoding UTF8` writes
        std::fs::write(dir.path().join("k"), format!("\u{feff}{KEY}\r\n")).expect("write");
        let f = SecretSource::File("k".into()).rooted(dir.path());
        assert_eq!(f.resolve("k").expect("file").expose(), KEY);
        std::fs::write(dir.path().join("e"), "\u{feff} \r\n").expect("write");
        let empty = SecretSource::File("e".into()).rooted(dir.path());
        assert!(
            !empty.is_available(),
            "only a mark and whitespace: nothing yet"
        );
        assert!(!SecretSource::File(dir.path().join("missing")).is_available());
        let e = empty.resolve("e").expect_err("empty");
        assert!(e.to_string().ends_with("is empty"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_device_or_fifo_secret_is_refused_at_once() {
        let e = SecretSource::File("/dev/zero".into())
            .resolve("k")
            .expect_err("a device");
        assert!(
            e.to_string()
                .ends_with("cannot read `/dev/zero`: it is not a regular file: it is a device"),
            "{e}"
        );
        assert!(SecretSource::File("/dev/zero".into()).is_available());
    }
}
