//! The part of BER (X.690) that LDAP messages use: definite lengths, one-byte tags, and the
//! universal INTEGER, ENUMERATED, BOOLEAN, OCTET STRING and SEQUENCE. Encoding builds a value
//! bottom up; decoding reads one element at a time from a byte slice, never past its end.

use crate::error::ldap::LdapError;

pub(super) const BOOLEAN: u8 = 0x01;
pub(super) const INTEGER: u8 = 0x02;
pub(super) const OCTET_STRING: u8 = 0x04;
pub(super) const ENUMERATED: u8 = 0x0a;
pub(super) const SEQUENCE: u8 = 0x30;
pub(super) const SET: u8 = 0x31;

/// One element: its tag and contents.
pub(super) fn element(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + 6);
    out.push(tag);
    let n = contents.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = (n as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

/// A constructed element from already encoded parts.
pub(super) fn constructed(tag: u8, parts: &[Vec<u8>]) -> Vec<u8> {
    element(tag, &parts.concat())
}

/// An INTEGER or ENUMERATED (`tag`) in its shortest two's-complement form.
pub(super) fn integer(tag: u8, value: i64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    element(tag, &bytes[start..])
}

pub(super) fn octets(tag: u8, value: &[u8]) -> Vec<u8> {
    element(tag, value)
}

/// How many bytes the element at the start of `bytes` takes (tag, length and contents), once
/// its header is there: `None` while more bytes are needed to tell.
pub(super) fn total_length(bytes: &[u8]) -> Result<Option<usize>, LdapError> {
    let Some(&first) = bytes.get(1) else {
        return Ok(None);
    };
    if first < 0x80 {
        return Ok(Some(2 + first as usize));
    }
    let count = (first & 0x7f) as usize;
    if count == 0 || count > 4 {
        return Err(LdapError::Malformed("a BER length of an unsupported form"));
    }
    let Some(digits) = bytes.get(2..2 + count) else {
        return Ok(None);
    };
    let length = digits.iter().fold(0usize, |n, b| (n << 8) | *b as usize);
    Ok(Some(2 + count + length))
}

/// Reads elements one after another from a byte slice.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element's tag and contents.
    pub(super) fn any(&mut self) -> Result<(u8, &'a [u8]), LdapError> {
        let total = total_length(self.rest)?
            .filter(|n| *n <= self.rest.len())
            .ok_or(LdapError::Malformed(
                "a BER element longer than its message",
            ))?;
        let header = if self.rest[1] < 0x80 {
            2
        } else {
            2 + (self.rest[1] & 0x7f) as usize
        };
        let (tag, contents) = (self.rest[0], &self.rest[header..total]);
        self.rest = &self.rest[total..];
        Ok((tag, contents))
    }

    /// The next element, which must have `tag`.
    pub(super) fn expect(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], LdapError> {
        match self.any()? {
            (t, contents) if t == tag => Ok(contents),
            _ => Err(LdapError::Malformed(what)),
        }
    }

    /// The next element as an INTEGER or ENUMERATED (`tag`) that fits an `i64`.
    pub(super) fn integer(&mut self, tag: u8, what: &'static str) -> Result<i64, LdapError> {
        let bytes = self.expect(tag, what)?;
        if bytes.is_empty() || bytes.len() > 8 {
            return Err(LdapError::Malformed(what));
        }
        let negative = bytes[0] & 0x80 != 0;
        let start = if negative { -1i64 } else { 0 };
        Ok(bytes.iter().fold(start, |n, b| (n << 8) | *b as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_take_their_shortest_form() {
        assert_eq!(integer(INTEGER, 0), [2, 1, 0]);
        assert_eq!(integer(INTEGER, 127), [2, 1, 0x7f]);
        assert_eq!(integer(INTEGER, 128), [2, 2, 0, 0x80]);
        assert_eq!(integer(INTEGER, -1), [2, 1, 0xff]);
        assert_eq!(integer(INTEGER, 300), [2, 2, 1, 0x2c]);
        for n in [0i64, 1, 127, 128, 255, 256, 65_535, 2_147_483_647, -1, -129] {
            let bytes = integer(INTEGER, n);
            assert_eq!(Reader::new(&bytes).integer(INTEGER, "n").ok(), Some(n));
        }
    }

    #[test]
    fn long_lengths_round_trip_and_truncation_is_refused() {
        let contents = vec![7u8; 300];
        let bytes = element(OCTET_STRING, &contents);
        assert_eq!(&bytes[..4], [4, 0x82, 1, 0x2c]);
        assert_eq!(total_length(&bytes).ok().flatten(), Some(304));
        assert_eq!(total_length(&bytes[..3]).ok().flatten(), None);
        let mut reader = Reader::new(&bytes);
        assert_eq!(reader.expect(OCTET_STRING, "s").ok(), Some(&contents[..]));
        assert!(reader.is_empty());
        assert!(Reader::new(&bytes[..100]).any().is_err());
        assert!(total_length(&[4, 0x85, 1, 1, 1, 1, 1]).is_err());
    }
}
