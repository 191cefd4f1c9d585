//! The TKEY record (RFC 2930), which hickory-proto does not know, and the TKEY queries of a
//! GSS-TSIG negotiation (RFC 3645 section 4): GSS-API tokens in mode 3, and the deletion of the
//! context (mode 5) at the end.

use hickory_proto::op::{Message, OpCode};
use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use crate::error::dns::TkeyError;

/// TKEY's record type (RFC 2930 section 2); hickory-proto reads it as an unknown type.
const TKEY: RecordType = RecordType::Unknown(249);
/// How long the server may keep a negotiated context, seconds: one apply needs it for minutes.
const LIFETIME: u32 = 3600;

/// The TKEY modes kmsconf uses (RFC 2930 section 2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// GSS-API negotiation (RFC 3645).
    Gssapi = 3,
    /// Key deletion.
    Delete = 5,
}

/// A TKEY RDATA: the algorithm is always `gss-tsig` here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tkey {
    pub(super) inception: u32,
    pub(super) expiration: u32,
    pub(super) mode: u16,
    pub(super) error: u16,
    pub(super) key: Vec<u8>,
    pub(super) other: Vec<u8>,
}

impl Tkey {
    /// What the client sends: `key` is a GSS-API token (or empty, to delete).
    pub(super) fn request(mode: Mode, now: u32, key: Vec<u8>) -> Self {
        Self {
            inception: now,
            expiration: now.saturating_add(LIFETIME),
            mode: mode as u16,
            error: 0,
            key,
            other: Vec::new(),
        }
    }

    /// The RDATA in wire format (RFC 2930 section 2), the algorithm name uncompressed.
    pub(super) fn to_bytes(&self) -> Result<Vec<u8>, TkeyError> {
        let mut out = TsigAlgorithm::Gss
            .to_name()
            .to_bytes()
            .map_err(TkeyError::Algorithm)?;
        out.extend_from_slice(&self.inception.to_be_bytes());
        out.extend_from_slice(&self.expiration.to_be_bytes());
        out.extend_from_slice(&self.mode.to_be_bytes());
        out.extend_from_slice(&self.error.to_be_bytes());
        for field in [&self.key, &self.other] {
            let length = u16::try_from(field.len()).map_err(|_| TkeyError::FieldTooLong {
                length: field.len(),
            })?;
            out.extend_from_slice(&length.to_be_bytes());
            out.extend_from_slice(field);
        }
        Ok(out)
    }

    /// Reads an RDATA; the algorithm name is skipped (a server answers with the one asked for).
    pub(super) fn from_bytes(bytes: &[u8]) -> Result<Self, TkeyError> {
        let mut reader = Reader { bytes, at: 0 };
        reader.skip_name()?;
        let inception = reader.u32()?;
        let expiration = reader.u32()?;
        let mode = reader.u16()?;
        let error = reader.u16()?;
        let key_len = usize::from(reader.u16()?);
        let key = reader.take(key_len)?.to_vec();
        let other_len = usize::from(reader.u16()?);
        let other = reader.take(other_len)?.to_vec();
        Ok(Self {
            inception,
            expiration,
            mode,
            error,
            key,
            other,
        })
    }
}

/// A cursor over an RDATA; every read is bounds-checked.
struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], TkeyError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or(TkeyError::Truncated)?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, TkeyError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, TkeyError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Skips a domain name: labels up to the root label, or up to a compression pointer.
    fn skip_name(&mut self) -> Result<(), TkeyError> {
        loop {
            let length = self.take(1)?[0];
            match length {
                0 => return Ok(()),
                l if l & 0xc0 == 0xc0 => return self.take(1).map(drop),
                l => self.take(usize::from(l)).map(drop)?,
            }
        }
    }
}

/// A TKEY query (RFC 3645 section 4.1.2): the question is the key name, type TKEY, and the TKEY
/// record goes in the additional section.
pub(super) fn query(key_name: &Name, tkey: &Tkey) -> Result<Message, TkeyError> {
    let mut message = Message::query();
    message.metadata.op_code = OpCode::Query;
    message.metadata.recursion_desired = false;
    let mut question = Query::query(key_name.clone(), TKEY);
    question.set_query_class(DNSClass::ANY);
    message.add_query(question);
    let rdata = RData::Unknown {
        code: TKEY,
        rdata: NULL::with(tkey.to_bytes()?),
    };
    let mut record = Record::from_rdata(key_name.clone(), 0, rdata);
    record.dns_class = DNSClass::ANY;
    message.add_additional(record);
    Ok(message)
}

/// The TKEY record of the server's answer, once the answer says it was accepted.
pub(super) fn answer(answer: &Message, key_name: &Name) -> Result<Tkey, TkeyError> {
    let code = answer.metadata.response_code;
    if code != ResponseCode::NoError {
        return Err(TkeyError::Refused { code });
    }
    let tkey = answer
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::Unknown { code, rdata } if *code == TKEY && r.name == *key_name => {
                Some(Tkey::from_bytes(&rdata.anything))
            }
            _ => None,
        })
        .ok_or(TkeyError::Missing)??;
    if tkey.error != 0 {
        return Err(TkeyError::Rejected { error: tkey.error });
    }
    Ok(tkey)
}

/// The captured exchange with Samba that the wire tests compare against: `what` -> bytes.
#[cfg(test)]
pub(super) fn captured(what: &str) -> Vec<u8> {
    let text = include_str!("testdata/samba-gss-tsig.txt");
    let hex = text
        .lines()
        .find_map(|l| l.strip_prefix(what)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{what}` in the captured exchange"));
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_captured_tkey_query_is_what_query_builds_and_the_answer_reads() {
        let sent = captured("tkey_query_mode3");
        let parsed = Message::from_vec(&sent).expect("query parses");
        let key_name = parsed.queries[0].name().clone();
        let RData::Unknown { rdata, .. } = &parsed.additionals[0].data else {
            panic!("no TKEY record: {parsed:?}");
        };
        let tkey = Tkey::from_bytes(&rdata.anything).expect("TKEY");
        assert_eq!((tkey.mode, tkey.error), (Mode::Gssapi as u16, 0));
        assert_eq!(tkey.expiration - tkey.inception, LIFETIME);
        assert_eq!(tkey.to_bytes().expect("encode"), rdata.anything);
        let mut rebuilt = query(&key_name, &tkey).expect("query");
        rebuilt.metadata.id = parsed.metadata.id;
        assert_eq!(rebuilt.to_vec().expect("encode"), sent, "byte for byte");

        let reply = Message::from_vec(&captured("tkey_answer_mode3")).expect("answer parses");
        let accepted = answer(&reply, &key_name).expect("Samba accepted the token");
        assert_eq!(accepted.mode, Mode::Gssapi as u16);
        assert!(
            !accepted.key.is_empty(),
            "the server's GSS-API token (AP-REP)"
        );
        let other = Name::from_ascii("other.kmsconf.").expect("name");
        assert!(answer(&reply, &other).is_err());

        let delete = Message::from_vec(&captured("tkey_query_mode5")).expect("delete parses");
        let RData::Unknown { rdata, .. } = &delete.additionals[0].data else {
            panic!("no TKEY record: {delete:?}");
        };
        let tkey = Tkey::from_bytes(&rdata.anything).expect("TKEY");
        assert_eq!((tkey.mode, tkey.key.len()), (Mode::Delete as u16, 0));
        assert!(delete.signature().is_some(), "a deletion is signed");
    }

    #[test]
    fn a_tkey_record_round_trips_and_truncation_is_an_error() {
        let tkey = Tkey::request(Mode::Gssapi, 1_700_000_000, vec![0x60, 0x82, 0x01]);
        let bytes = tkey.to_bytes().expect("encode");
        // `gss-tsig.` then the fixed fields
        assert_eq!(&bytes[..10], b"\x08gss-tsig\x00");
        assert_eq!(&bytes[10..14], &1_700_000_000u32.to_be_bytes());
        assert_eq!(&bytes[18..20], &[0, 3], "mode 3");
        assert_eq!(Tkey::from_bytes(&bytes).expect("decode"), tkey);
        let e = Tkey::from_bytes(&bytes[..bytes.len() - 3]).expect_err("truncated");
        assert!(matches!(e, TkeyError::Truncated), "{e}");
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    #[test]
    fn a_tkey_query_asks_for_the_key_name_and_carries_the_record_in_additional() {
        let name = Name::from_ascii("k1.kmsconf.").expect("name");
        let m = query(&name, &Tkey::request(Mode::Delete, 0, Vec::new())).expect("query");
        assert_eq!(m.queries[0].query_type(), TKEY);
        assert_eq!(m.queries[0].query_class(), DNSClass::ANY);
        let back = Message::from_vec(&m.to_vec().expect("encode")).expect("decode");
        assert_eq!(back.additionals.len(), 1);
        assert_eq!(back.additionals[0].record_type(), TKEY);
    }
}
