//! Channel bindings over HTTPS: RFC 5929's `tls-server-end-point`, the hash of the server's
//! certificate, which ties the authentication to the TLS connection it runs in. Windows hosts
//! whose WinRM service has `CbtHardeningLevel = Strict` (Extended Protection) refuse HTTPS
//! authentication without it.
//!
//! RFC 5929 section 4.1: the hash function is the one of the certificate's signature algorithm
//! (SHA-224, SHA-256, SHA-384 or SHA-512), except that MD5 and SHA-1 are replaced by SHA-256, as
//! pypsrp and `requests-ntlm` compute it; a signature algorithm with no single hash of its own
//! (Ed25519), for which the RFC defines no bindings, is hashed with SHA-256 too.

use sha2::Digest as _;

/// The prefix of the bindings' application data (RFC 5929 section 4).
pub const PREFIX: &[u8] = b"tls-server-end-point:";

/// The hash functions a certificate's signature algorithm can name here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha224 => sha2::Sha224::digest(data).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// The channel bindings' application data for the server certificate `der`: `PREFIX` and the
/// certificate's hash.
pub fn tls_server_end_point(der: &[u8]) -> Vec<u8> {
    let hash = signature_hash(der).unwrap_or(Hash::Sha256);
    let mut data = PREFIX.to_vec();
    data.extend_from_slice(&hash.digest(der));
    data
}

/// The hash of the certificate's signature algorithm, where it names SHA-224, SHA-384 or
/// SHA-512 (RSA, DSA, ECDSA or RSASSA-PSS); `None` means SHA-256 (SHA-256 itself, MD5, SHA-1,
/// Ed25519, unknown).
fn signature_hash(der: &[u8]) -> Option<Hash> {
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, ... }
    let (_, certificate, _) = tlv(der)?;
    let (_, _, after_tbs) = tlv(certificate)?;
    let (_, algorithm, _) = tlv(after_tbs)?;
    let (tag, oid, params) = tlv(algorithm)?;
    if tag != OID_TAG {
        return None;
    }
    match oid {
        SHA224_RSA | ECDSA_SHA224 | DSA_SHA224 => Some(Hash::Sha224),
        SHA384_RSA | ECDSA_SHA384 => Some(Hash::Sha384),
        SHA512_RSA | ECDSA_SHA512 => Some(Hash::Sha512),
        RSASSA_PSS => pss_hash(params),
        _ => None,
    }
}

/// RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] AlgorithmIdentifier DEFAULT sha1, ... }.
fn pss_hash(params: &[u8]) -> Option<Hash> {
    let (_, fields, _) = tlv(params)?;
    let (tag, hash, _) = tlv(fields)?;
    if tag != 0xa0 {
        return None;
    }
    let (_, identifier, _) = tlv(hash)?;
    let (_, oid, _) = tlv(identifier)?;
    match oid {
        SHA224 => Some(Hash::Sha224),
        SHA384 => Some(Hash::Sha384),
        SHA512 => Some(Hash::Sha512),
        _ => None,
    }
}

const OID_TAG: u8 = 0x06;
// DER contents of the OIDs: sha224/384/512WithRSAEncryption (1.2.840.113549.1.1.14/12/13),
// ecdsa-with-SHA224/384/512 (1.2.840.10045.4.3.1/3/4), dsa-with-sha224 (2.16.840.1.101.3.4.3.1),
// RSASSA-PSS (1.2.840.113549.1.1.10), and id-sha224/384/512 (2.16.840.1.101.3.4.2.4/2/3).
const SHA224_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0e];
const SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const ECDSA_SHA224: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x01];
const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
const DSA_SHA224: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x01];
const SHA224: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04];
const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

/// One DER element at the start of `input`: its tag, its contents, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let length = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (length, &rest[n..])
    };
    (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate's outline: SEQUENCE { tbs, AlgorithmIdentifier { oid, params }, sig }.
    fn certificate(oid: &[u8], params: &[u8]) -> Vec<u8> {
        let wrap = |tag: u8, body: &[u8]| {
            let mut v = vec![tag, body.len() as u8];
            v.extend_from_slice(body);
            v
        };
        let mut algorithm = wrap(OID_TAG, oid);
        algorithm.extend_from_slice(params);
        let mut body = wrap(0x30, b"tbs");
        body.extend(wrap(0x30, &algorithm));
        body.extend(wrap(0x03, b"\0sig"));
        wrap(0x30, &body)
    }

    #[test]
    fn the_hash_follows_the_signature_algorithm_and_md5_sha1_become_sha256() {
        let sha1_rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
        let sha256_rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
        for (oid, len) in [
            (&sha1_rsa[..], 32),
            (&sha256_rsa[..], 32),
            (SHA224_RSA, 28),
            (ECDSA_SHA224, 28),
            (DSA_SHA224, 28),
            (SHA384_RSA, 48),
            (SHA512_RSA, 64),
            (ECDSA_SHA384, 48),
            (ECDSA_SHA512, 64),
        ] {
            let der = certificate(oid, &[0x05, 0x00]);
            let data = tls_server_end_point(&der);
            assert_eq!(&data[..PREFIX.len()], PREFIX);
            assert_eq!(data.len() - PREFIX.len(), len, "{oid:x?}");
        }
        // RSASSA-PSS names its hash in its parameters: [0] { AlgorithmIdentifier { sha384 } }
        let mut id = vec![OID_TAG, SHA384.len() as u8];
        id.extend_from_slice(SHA384);
        let mut hash = vec![0x30, id.len() as u8];
        hash.extend(id);
        let mut tagged = vec![0xa0, hash.len() as u8];
        tagged.extend(hash);
        let mut params = vec![0x30, tagged.len() as u8];
        params.extend(tagged);
        let der = certificate(RSASSA_PSS, &params);
        assert_eq!(tls_server_end_point(&der).len() - PREFIX.len(), 48);
        // what cannot be read is hashed with SHA-256
        assert_eq!(tls_server_end_point(b"\x30\xff").len() - PREFIX.len(), 32);
        let sha256 = ring::digest::digest(&ring::digest::SHA256, b"\x30\xff");
        assert!(tls_server_end_point(b"\x30\xff").ends_with(sha256.as_ref()));
        // the hashes are the standard ones (SHA-224 of "abc", FIPS 180-2 appendix B)
        assert_eq!(
            Hash::Sha224.digest(b"abc"),
            [
                0x23, 0x09, 0x7d, 0x22, 0x34, 0x05, 0xd8, 0x22, 0x86, 0x42, 0xa4, 0x77, 0xbd, 0xa2,
                0x55, 0xb3, 0x2a, 0xad, 0xbc, 0xe4, 0xbd, 0xa0, 0xb3, 0xf7, 0xe3, 0x6c, 0x9d, 0xa7
            ]
        );
        for (hash, algorithm) in [
            (Hash::Sha256, &ring::digest::SHA256),
            (Hash::Sha384, &ring::digest::SHA384),
            (Hash::Sha512, &ring::digest::SHA512),
        ] {
            assert_eq!(
                hash.digest(b"abc"),
                ring::digest::digest(algorithm, b"abc").as_ref()
            );
        }
    }
}
