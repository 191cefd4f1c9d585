//! Secret references as the config writes them: `{ env = "VAR" }`, `{ file = "path" }` or, where
//! a literal is tolerated, a string.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A secret: read from an environment variable or a file; a literal string is accepted with a
/// warning. Its schema is [`SecretReferenceWire`]'s with the string added.
#[derive(Debug, Clone)]
pub enum SecretWire {
    Env {
        env: String,
    },
    File {
        file: String,
    },
    /// The secret written in the config (discouraged).
    Literal(String),
}

impl JsonSchema for SecretWire {
    fn schema_name() -> Cow<'static, str> {
        "SecretWire".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = SecretReferenceWire::json_schema(generator);
        schema.insert(
            "description".into(),
            "A secret: read from an environment variable or a file; a literal string is accepted with a\nwarning.".into(),
        );
        if let Some(serde_json::Value::Array(forms)) = schema.get_mut("anyOf") {
            forms.push(serde_json::json!({
                "description": "The secret written in the config (discouraged).",
                "type": "string"
            }));
        }
        schema
    }
}

impl<'de> Deserialize<'de> for SecretWire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SecretWire;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`{ env = \"VAR\" }`, `{ file = \"path\" }` or a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(SecretWire::Literal(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut found: Option<SecretWire> = None;
                while let Some(key) = map.next_key::<String>()? {
                    let value: String = map.next_value()?;
                    let item = match key.as_str() {
                        "env" => SecretWire::Env { env: value },
                        "file" => SecretWire::File { file: value },
                        other => return Err(de::Error::unknown_field(other, &["env", "file"])),
                    };
                    if found.replace(item).is_some() {
                        return Err(de::Error::custom(
                            "a secret takes exactly one of `env` or `file`",
                        ));
                    }
                }
                found.ok_or_else(|| de::Error::custom("a secret needs `env` or `file`"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A secret that must not be written in the config: `{ env = "VAR" }` or `{ file = "path" }`.
/// Only its schema is used: the key is read as a [`SecretWire`], so a literal gets `validate`'s
/// message saying why it is refused rather than serde's.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum SecretReferenceWire {
    Env {
        /// Environment variable holding the secret.
        #[schemars(regex(pattern = r"^[^=\x00]+$"))]
        env: String,
    },
    File {
        /// File holding the secret, relative to the config file.
        #[schemars(regex(pattern = r"\S"))]
        file: String,
    },
}
