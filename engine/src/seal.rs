//! The digest and HMAC that seal a plan file: SHA-256 (and HMAC-SHA-256) over the canonical
//! JSON of its content, so the same content always gives the same bytes however the file was
//! indented or its keys ordered.
//!
//! `ring` provides both: it is already in the build (the DNS provider signs TSIG with it), is
//! maintained, and compares HMACs in constant time.

use ring::{digest, hmac};
use serde_json::Value;

use crate::secret::Secret;

/// `sha256:` and the hex SHA-256 of the canonical form of `content`.
pub fn digest(content: &Value) -> String {
    let hash = digest::digest(&digest::SHA256, canonical(content).as_bytes());
    format!("sha256:{}", hex(hash.as_ref()))
}

/// `hmac-sha256:` and the hex HMAC-SHA-256 of the canonical form of `content` under `key`.
pub fn hmac(content: &Value, key: &Secret) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key.expose().as_bytes());
    let tag = hmac::sign(&key, canonical(content).as_bytes());
    format!("hmac-sha256:{}", hex(tag.as_ref()))
}

/// Whether `recorded` is the HMAC of `content` under `key` (compared in constant time).
pub fn verify_hmac(content: &Value, key: &Secret, recorded: &str) -> bool {
    let Some(tag) = recorded.strip_prefix("hmac-sha256:").and_then(unhex) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, key.expose().as_bytes());
    hmac::verify(&key, canonical(content).as_bytes(), &tag).is_ok()
}

/// The digest of an object whose array under `key` comes one item at a time (a plan's hosts):
/// the same as [`digest`] of the whole, without ever holding the whole, canonical or not.
pub fn digest_streamed(
    head: &serde_json::Map<String, Value>,
    key: &str,
    items: impl Iterator<Item = Value>,
) -> String {
    let mut hash = Hasher(digest::Context::new(&digest::SHA256));
    let mut items = Some(items);
    let mut entries: Vec<(&String, &Value)> = head.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    hash.push('{');
    for (i, (name, item)) in entries.into_iter().enumerate() {
        if i > 0 {
            hash.push(',');
        }
        hash.push_str(&Value::String(name.clone()).to_string());
        hash.push(':');
        match items.take_if(|_| name == key) {
            Some(streamed) => {
                hash.push('[');
                for (j, one) in streamed.enumerate() {
                    if j > 0 {
                        hash.push(',');
                    }
                    write_canonical(&one, &mut hash);
                }
                hash.push(']');
            }
            None => write_canonical(item, &mut hash),
        }
    }
    hash.push('}');
    format!("sha256:{}", hex(hash.0.finish().as_ref()))
}

/// Where canonical JSON goes: a string, or straight into a hash.
trait Sink {
    fn push(&mut self, c: char);
    fn push_str(&mut self, s: &str);
}

impl Sink for String {
    fn push(&mut self, c: char) {
        String::push(self, c);
    }
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }
}

struct Hasher(digest::Context);

impl Sink for Hasher {
    fn push(&mut self, c: char) {
        self.0.update(c.encode_utf8(&mut [0; 4]).as_bytes());
    }
    fn push_str(&mut self, s: &str) {
        self.0.update(s.as_bytes());
    }
}

/// JSON with object keys sorted and no insignificant whitespace (sorted here, so the form does
/// not depend on how `serde_json` orders its maps).
fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut impl Sink) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_digest_ignores_layout_and_key_order_but_not_content() {
        let a: Value = serde_json::from_str("{\"b\": [1, 2], \"a\": {\"y\": \"x\", \"x\": null}}")
            .expect("json");
        let b = json!({"a": {"x": null, "y": "x"}, "b": [1, 2]});
        assert_eq!(canonical(&a), r#"{"a":{"x":null,"y":"x"},"b":[1,2]}"#);
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(
            digest(&a),
            digest(&json!({"a": {"x": null, "y": "x"}, "b": [2, 1]}))
        );
        // the SHA-256 of `{}`, as `printf '{}' | sha256sum` gives it
        assert_eq!(
            digest(&json!({})),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn an_hmac_verifies_only_with_its_key_and_content() {
        let key = Secret::new("a plan key of enough characters!");
        let content = json!({"hosts": []});
        let tag = hmac(&content, &key);
        assert!(verify_hmac(&content, &key, &tag));
        assert!(!verify_hmac(
            &content,
            &Secret::new("another key, also long enough"),
            &tag
        ));
        assert!(!verify_hmac(&json!({"hosts": [1]}), &key, &tag));
        assert!(!verify_hmac(&content, &key, "hmac-sha256:zz"));
    }
}
