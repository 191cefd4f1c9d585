//! The secret kinds KMS uses, each built only from a well-formed value and never shown: product
//! keys (masked to their last five characters, as Windows shows them), confirmation IDs and TSIG
//! key material.

use std::fmt;

use kmsconf_engine::secret::Secret;

/// The 24 characters of a product key, plus `N`, which keys since Windows 8 carry exactly once
/// (Microsoft's published KMS client keys, e.g. `WX4NM-...`, show it).
const KEY_ALPHABET: &str = "BCDFGHJKMNPQRTVWXY2346789";

/// Why a product key, confirmation ID or TSIG secret is malformed. Never holds the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the product key contains a typographic dash (en or em dash) where a hyphen `-` belongs"
    )]
    TypographicDash,
    #[error("a product key is five groups of five characters separated by `-`")]
    Groups,
    /// `shown` is the one character outside the alphabet (escaped when not printable).
    #[error("a product key uses only the characters `{KEY_ALPHABET}`; it contains `{shown}`")]
    Character { shown: String },
    #[error("a product key contains the letter `N` at most once")]
    RepeatedN,
    #[error("a confirmation ID is 48 digits (spaces and `-` between groups are allowed)")]
    ConfirmationId,
    #[error("a TSIG secret is base64 text, as `tsig-keygen` prints it")]
    TsigBase64,
    #[error("the TSIG secret is empty")]
    TsigEmpty,
}

/// A product key in the five-by-five form Windows accepts. Built only from a well-formed string.
#[derive(Clone, PartialEq, Eq)]
pub struct ProductKey(Secret);

impl ProductKey {
    /// Checks the form (five groups of five from Microsoft's 24-character alphabet) without ever
    /// putting the key into the error message.
    pub fn parse(secret: &Secret) -> Result<Self, KeyError> {
        let key = secret.expose().trim().to_ascii_uppercase();
        if key
            .chars()
            .any(|c| matches!(c, '\u{2010}'..='\u{2015}' | '\u{2212}'))
        {
            return Err(KeyError::TypographicDash);
        }
        let groups: Vec<&str> = key.split('-').collect();
        if groups.len() != 5 || groups.iter().any(|g| g.chars().count() != 5) {
            return Err(KeyError::Groups);
        }
        if let Some(bad) = key
            .chars()
            .find(|c| *c != '-' && !KEY_ALPHABET.contains(*c))
        {
            let shown = if bad.is_ascii_alphanumeric() {
                bad.to_string()
            } else {
                format!("{:?}", bad)
            };
            return Err(KeyError::Character { shown });
        }
        if key.matches('N').count() > 1 {
            return Err(KeyError::RepeatedN);
        }
        Ok(Self(Secret::new(key)))
    }

    /// The last five characters: all that Windows itself ever shows of an installed key.
    pub fn partial(&self) -> String {
        let k = self.0.expose();
        k[k.len() - 5..].to_string()
    }

    /// The key as slmgr would take it, masked: `*****-*****-*****-*****-ABCDE`.
    pub fn masked(&self) -> String {
        masked(&self.partial())
    }

    pub fn secret(&self) -> &Secret {
        &self.0
    }
}

impl fmt::Debug for ProductKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProductKey({})", self.masked())
    }
}

/// A key as kmsconf shows it, from its last five characters: `*****-*****-*****-*****-6789B`.
pub fn masked(partial: &str) -> String {
    format!("*****-*****-*****-*****-{partial}")
}

/// A confirmation ID from the activation phone line: 48 digits, often written in groups.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfirmationId(Secret);

impl ConfirmationId {
    pub fn parse(secret: &Secret) -> Result<Self, KeyError> {
        let digits: String = secret
            .expose()
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        if digits.len() != 48 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(KeyError::ConfirmationId);
        }
        Ok(Self(Secret::new(digits)))
    }

    pub fn digits(&self) -> &str {
        self.0.expose()
    }

    /// The first six-digit group (1-based) whose last digit is not its check digit
    /// ([`check_digit`]); `None` when every group checks. Never the digits themselves.
    pub fn failed_check_group(&self) -> Option<usize> {
        let digits: Vec<u32> = self
            .digits()
            .chars()
            .filter_map(|c| c.to_digit(10))
            .collect();
        digits
            .chunks(6)
            .position(|g| g.len() == 6 && check_digit(&g[..5]) != g[5])
            .map(|i| i + 1)
    }
}

/// The check digit of a confirmation ID group's five digits: (d1 + 2·d2 + d3 + 2·d4 + d5) mod 7,
/// as a public confirmation ID generator writes it (the facts table's `cid-check-digit`, a
/// third-party source for Windows XP's 42-digit IDs; that Windows 8 and later check their 48-digit
/// IDs the same way is unverified).
pub fn check_digit(five: &[u32]) -> u32 {
    five.iter()
        .enumerate()
        .map(|(i, d)| if i % 2 == 1 { d * 2 } else { *d })
        .sum::<u32>()
        % 7
}

impl fmt::Debug for ConfirmationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConfirmationId(<redacted>)")
    }
}

/// The key material of a TSIG key: the base64 text `tsig-keygen` prints, decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigSecret(Vec<u8>);

impl TsigSecret {
    /// Decodes the base64 secret without ever putting it into the error message.
    pub fn parse(secret: &Secret) -> Result<Self, KeyError> {
        let text: String = secret
            .expose()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|_| KeyError::TsigBase64)?;
        if bytes.is_empty() {
            return Err(KeyError::TsigEmpty);
        }
        Ok(Self(bytes))
    }

    /// The key bytes, for the one place that signs with them.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for TsigSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TsigSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "WX4NM-KYWYW-QJJR4-XV3QB-6VM33";

    #[test]
    fn product_keys_never_print_themselves() {
        let k = ProductKey::parse(&Secret::new(KEY)).expect("valid");
        assert_eq!(
            format!("{k:?}"),
            "ProductKey(*****-*****-*****-*****-6VM33)"
        );
        assert_eq!(k.partial(), "6VM33");
    }
    #[test]
    fn product_keys_are_checked_without_echoing_them() {
        for bad in [
            "WX4NM-KYWYW-QJJR4-XV3QB",
            "WX4NM-KYWYW-QJJR4-XV3QB-6VM3A",
            "WX4NM–KYWYW-QJJR4-XV3QB-6VM33",
        ] {
            let e = ProductKey::parse(&Secret::new(bad)).expect_err(bad);
            assert!(!e.to_string().contains("KYWYW"), "{e}");
        }
        assert!(ProductKey::parse(&Secret::new(KEY.to_lowercase())).is_ok());
    }

    #[test]
    fn confirmation_ids_take_groups() {
        let cid = "123456-123456-123456-123456-123456-123456-123456-123456";
        assert_eq!(
            ConfirmationId::parse(&Secret::new(cid))
                .expect("ok")
                .digits()
                .len(),
            48
        );
        assert!(ConfirmationId::parse(&Secret::new("12")).is_err());
        // 12345 -> 1 + 4 + 3 + 8 + 5 = 21, 21 mod 7 = 0
        assert_eq!(check_digit(&[1, 2, 3, 4, 5]), 0);
        let good = "123450-".repeat(8);
        let parsed = |t: &str| ConfirmationId::parse(&Secret::new(t)).expect("48 digits");
        assert_eq!(
            parsed(good.trim_end_matches('-')).failed_check_group(),
            None
        );
        // one digit mistyped in the third group
        let typo =
            good.trim_end_matches('-')
                .replacen("123450-123450-123450", "123450-123450-123460", 1);
        assert_eq!(parsed(&typo).failed_check_group(), Some(3));
    }

    #[test]
    fn tsig_secrets_decode_base64_and_never_echo_it() {
        let ok = TsigSecret::parse(&Secret::new("c2VjcmV0LWtleS1ieXRlcw==")).expect("base64");
        assert_eq!(ok.bytes(), b"secret-key-bytes");
        assert_eq!(format!("{ok:?}"), "TsigSecret(<redacted>)");
        let e = TsigSecret::parse(&Secret::new("not base64 %%%")).expect_err("bad");
        assert!(!e.to_string().contains("%%%"), "{e}");
    }
}
