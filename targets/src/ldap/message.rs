//! LDAPv3 messages (RFC 4511) kmsconf sends and reads: bind with SASL, search, delete, unbind,
//! and the responses to them, encoded with [`super::ber`].

use std::collections::BTreeMap;

use super::ber::{self, Reader, BOOLEAN, ENUMERATED, INTEGER, OCTET_STRING, SEQUENCE, SET};
use crate::error::ldap::LdapError;

pub(super) const BIND_RESPONSE: u8 = 0x61;
pub(super) const SEARCH_ENTRY: u8 = 0x64;
pub(super) const SEARCH_DONE: u8 = 0x65;
pub(super) const SEARCH_REFERENCE: u8 = 0x73;
pub(super) const DELETE_RESPONSE: u8 = 0x6b;
pub(super) const EXTENDED_RESPONSE: u8 = 0x78;
/// `saslBindInProgress`.
pub(super) const BIND_IN_PROGRESS: i64 = 14;

/// How far below the base a search looks.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    Base = 0,
    OneLevel = 1,
}

/// The search filters kmsconf uses.
#[derive(Debug, Clone)]
pub enum Filter {
    /// `(attr=*)`
    Present(&'static str),
    /// `(attr=value)`
    Equal(&'static str, String),
}

impl Filter {
    fn encode(&self) -> Vec<u8> {
        match self {
            Self::Present(attr) => ber::octets(0x87, attr.as_bytes()),
            Self::Equal(attr, value) => ber::constructed(
                0xa3,
                &[
                    ber::octets(OCTET_STRING, attr.as_bytes()),
                    ber::octets(OCTET_STRING, value.as_bytes()),
                ],
            ),
        }
    }
}

/// One entry a search returned: its DN and its attributes by lowercase name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    pub attributes: BTreeMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    /// The first value of `name` as text.
    pub fn text(&self, name: &str) -> Option<String> {
        let value = self.attributes.get(&name.to_ascii_lowercase())?.first()?;
        Some(String::from_utf8_lossy(value).into_owned())
    }

    /// The first value of `name` as bytes.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        Some(self.attributes.get(&name.to_ascii_lowercase())?.first()?)
    }
}

/// An LDAPMessage around one request.
pub(super) fn envelope(id: i32, op: Vec<u8>) -> Vec<u8> {
    ber::constructed(SEQUENCE, &[ber::integer(INTEGER, id.into()), op])
}

/// BindRequest, SASL `mechanism`, with `credentials` when there are any.
pub(super) fn sasl_bind(mechanism: &str, credentials: Option<&[u8]>) -> Vec<u8> {
    let mut sasl = vec![ber::octets(OCTET_STRING, mechanism.as_bytes())];
    if let Some(c) = credentials {
        sasl.push(ber::octets(OCTET_STRING, c));
    }
    ber::constructed(
        0x60,
        &[
            ber::integer(INTEGER, 3),
            ber::octets(OCTET_STRING, b""),
            ber::constructed(0xa3, &sasl),
        ],
    )
}

pub(super) fn search(base: &str, scope: Scope, filter: &Filter, attributes: &[&str]) -> Vec<u8> {
    let attributes: Vec<Vec<u8>> = attributes
        .iter()
        .map(|a| ber::octets(OCTET_STRING, a.as_bytes()))
        .collect();
    ber::constructed(
        0x63,
        &[
            ber::octets(OCTET_STRING, base.as_bytes()),
            ber::integer(ENUMERATED, scope as i64),
            ber::integer(ENUMERATED, 0),
            ber::integer(INTEGER, 0),
            ber::integer(INTEGER, 0),
            ber::octets(BOOLEAN, &[0]),
            filter.encode(),
            ber::constructed(SEQUENCE, &attributes),
        ],
    )
}

pub(super) fn delete(dn: &str) -> Vec<u8> {
    ber::octets(0x4a, dn.as_bytes())
}

pub(super) fn unbind() -> Vec<u8> {
    ber::octets(0x42, b"")
}

/// A response: its message ID, its protocol op's tag and contents.
pub(super) struct Response<'a> {
    pub(super) id: i64,
    pub(super) tag: u8,
    pub(super) body: &'a [u8],
}

pub(super) fn response(message: &[u8]) -> Result<Response<'_>, LdapError> {
    let mut outer = Reader::new(message);
    let mut fields = Reader::new(outer.expect(SEQUENCE, "an LDAPMessage is not a SEQUENCE")?);
    let id = fields.integer(INTEGER, "an LDAPMessage without a message ID")?;
    let (tag, body) = fields.any()?;
    Ok(Response { id, tag, body })
}

/// An LDAPResult: code, matched DN, diagnostic message, and a bind's server SASL credentials.
#[derive(Debug)]
pub(super) struct LdapResult {
    pub(super) code: i64,
    pub(super) message: String,
    pub(super) sasl_credentials: Option<Vec<u8>>,
}

pub(super) fn result(body: &[u8]) -> Result<LdapResult, LdapError> {
    let mut r = Reader::new(body);
    let code = r.integer(ENUMERATED, "a result without a result code")?;
    r.expect(OCTET_STRING, "a result without a matched DN")?;
    let message = r.expect(OCTET_STRING, "a result without a diagnostic message")?;
    let mut sasl_credentials = None;
    while !r.is_empty() {
        let (tag, contents) = r.any()?;
        if tag == 0x87 {
            sasl_credentials = Some(contents.to_vec());
        }
    }
    Ok(LdapResult {
        code,
        message: diagnostic(message),
        sasl_credentials,
    })
}

/// The most of a server's diagnostic message kept for an error.
const MAX_DIAGNOSTIC: usize = 1024;

/// A server's diagnostic message as an error quotes it: on one line (a line break is a
/// space, so the text cannot pass for a line of kmsconf's own) and cut at [`MAX_DIAGNOSTIC`]
/// bytes, saying how much was not kept.
fn diagnostic(message: &[u8]) -> String {
    let kept = &message[..message.len().min(MAX_DIAGNOSTIC)];
    let text = String::from_utf8_lossy(kept);
    let mut text: String = text
        .trim()
        .chars()
        .map(|c| if matches!(c, '\n' | '\r') { ' ' } else { c })
        .collect();
    if message.len() > MAX_DIAGNOSTIC {
        let dropped = message.len() - MAX_DIAGNOSTIC;
        text.push_str(&format!("… ({dropped} more bytes not kept)"));
    }
    text
}

pub(super) fn entry(body: &[u8]) -> Result<Entry, LdapError> {
    let mut r = Reader::new(body);
    let dn = r.expect(OCTET_STRING, "an entry without a DN")?;
    let mut list = Reader::new(r.expect(SEQUENCE, "an entry without attributes")?);
    let mut entry = Entry {
        dn: String::from_utf8_lossy(dn).into_owned(),
        attributes: BTreeMap::new(),
    };
    while !list.is_empty() {
        let mut attribute = Reader::new(list.expect(SEQUENCE, "a malformed attribute")?);
        let name = attribute.expect(OCTET_STRING, "an attribute without a name")?;
        let mut values = Reader::new(attribute.expect(SET, "an attribute without values")?);
        let mut out = Vec::new();
        while !values.is_empty() {
            out.push(values.expect(OCTET_STRING, "a malformed value")?.to_vec());
        }
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        entry.attributes.entry(name).or_default().extend(out);
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Whatever a server sends as a message, reading it gives a value or an error: never a
        /// panic, an overflow or a read past its end.
        #[test]
        fn arbitrary_messages_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = ber::total_length(&bytes);
            if let Ok(r) = response(&bytes) {
                let _ = result(r.body);
                let _ = entry(r.body);
            }
            let _ = result(&bytes);
            let _ = entry(&bytes);
        }

        /// A well-formed envelope around arbitrary contents: the same.
        #[test]
        fn arbitrary_bodies_in_an_envelope_never_panic(
            tag in any::<u8>(),
            body in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let bytes = envelope(7, ber::element(tag, &body));
            let r = response(&bytes).expect("an envelope reads");
            prop_assert_eq!(r.id, 7);
            let _ = result(r.body);
            let _ = entry(r.body);
        }
    }

    #[test]
    fn a_diagnostic_message_is_one_line_and_cut() {
        assert_eq!(
            diagnostic(b" bad\r\nkms01: 0 changes\n"),
            "bad  kms01: 0 changes"
        );
        let long = diagnostic(&[b'x'; 5000]);
        assert!(long.starts_with(&"x".repeat(1024)), "{long}");
        assert!(long.ends_with("… (3976 more bytes not kept)"), "{long}");
    }

    #[test]
    fn a_search_request_encodes_as_rfc_4511_lays_it_out() {
        let bytes = envelope(
            2,
            search("", Scope::Base, &Filter::Present("objectClass"), &["cn"]),
        );
        let expected: &[u8] = &[
            0x30, 0x29, 0x02, 0x01, 0x02, 0x63, 0x24, 0x04, 0x00, 0x0a, 0x01, 0x00, 0x0a, 0x01,
            0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x01, 0x00, 0x87, 0x0b, b'o', b'b',
            b'j', b'e', b'c', b't', b'C', b'l', b'a', b's', b's', 0x30, 0x04, 0x04, 0x02, b'c',
            b'n',
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn entries_and_results_decode() {
        let attribute = ber::constructed(
            SEQUENCE,
            &[
                ber::octets(OCTET_STRING, b"displayName"),
                ber::constructed(SET, &[ber::octets(OCTET_STRING, b"WS2025 CSVLK")]),
            ],
        );
        let body = [
            ber::octets(OCTET_STRING, b"CN=x,CN=Activation Objects"),
            ber::constructed(SEQUENCE, &[attribute]),
        ]
        .concat();
        let message = envelope(3, ber::element(SEARCH_ENTRY, &body));
        let r = response(&message).expect("response");
        assert_eq!((r.id, r.tag), (3, SEARCH_ENTRY));
        let e = entry(r.body).expect("entry");
        assert_eq!(e.dn, "CN=x,CN=Activation Objects");
        assert_eq!(e.text("displayname").as_deref(), Some("WS2025 CSVLK"));

        let done = [
            ber::integer(ENUMERATED, 50),
            ber::octets(OCTET_STRING, b""),
            ber::octets(OCTET_STRING, b"access denied "),
            ber::octets(0x87, b"tok"),
        ]
        .concat();
        let result = result(&done).expect("result");
        assert_eq!(result.code, 50);
        assert_eq!(result.message, "access denied");
        assert_eq!(result.sasl_credentials.as_deref(), Some(&b"tok"[..]));
        assert!(super::result(&done[..5]).is_err());
    }
}
