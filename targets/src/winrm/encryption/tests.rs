//! Framing: the exact bytes pywinrm and pypsrp send, and what `unframe` accepts and refuses.

use super::*;

const SIGNATURE: &[u8] = &[1, 0, 0, 0, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0xff, 0xfe];

/// `body` with every `from` replaced by `to`, bytes for bytes.
fn replace(body: &[u8], from: &str, to: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(from.as_bytes()) {
            out.extend_from_slice(to.as_bytes());
            rest = after;
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

fn spnego_type() -> String {
    content_type(Protocol::Spnego)
}

#[test]
fn the_content_type_names_the_protocol_and_boundary() {
    assert_eq!(
        content_type(Protocol::Spnego),
        "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";\
         boundary=\"Encrypted Boundary\""
    );
    assert_eq!(
        content_type(Protocol::Kerberos),
        "multipart/encrypted;protocol=\"application/HTTP-Kerberos-session-encrypted\";\
         boundary=\"Encrypted Boundary\""
    );
}

#[test]
fn frame_writes_the_ms_wsmv_layout() {
    let body = frame(Protocol::Spnego, 5, SIGNATURE, b"\x00\x01\x02\x03\x04");
    let mut expected = b"--Encrypted Boundary\r\n\
        \tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n\
        \tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=5\r\n\
        --Encrypted Boundary\r\n\
        \tContent-Type: application/octet-stream\r\n\
        \x10\x00\x00\x00"
        .to_vec();
    expected.extend_from_slice(SIGNATURE);
    expected.extend_from_slice(b"\x00\x01\x02\x03\x04--Encrypted Boundary--\r\n");
    assert_eq!(body, expected);
}

#[test]
fn unframe_gives_back_what_frame_wrote() {
    // sealed bytes that look like boundaries and CRLFs must not confuse the split
    let sealed = b"--Encrypted Boundary\r\n\r\n--Encrypted Boundary--\r\n\x00".to_vec();
    for protocol in [Protocol::Spnego, Protocol::Kerberos] {
        let body = frame(protocol, sealed.len(), SIGNATURE, &sealed);
        let framed = unframe(&content_type(protocol), &body).expect("a framed body");
        assert_eq!(
            framed,
            Framed {
                protocol,
                plain_len: sealed.len(),
                header: SIGNATURE,
                sealed: &sealed,
            }
        );
    }
    let empty = frame(Protocol::Spnego, 0, &[], &[]);
    let framed = unframe(&spnego_type(), &empty).expect("an empty envelope");
    assert_eq!((framed.header, framed.sealed), (&[][..], &[][..]));
}

#[test]
fn unframe_takes_what_servers_really_send() {
    let sealed = b"sealed!";
    // Exchange puts a space after `--`; the end marker may be missing; names in another case;
    // a bare boundary parameter; another boundary
    let mut body = b"-- Encrypted Boundary\r\n\
        \tcontent-type: application/http-spnego-session-encrypted\r\n\
        \tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=7\r\n\
        -- Encrypted Boundary\r\n\
        \tContent-Type: application/octet-stream\r\n\
        \x10\x00\x00\x00"
        .to_vec();
    body.extend_from_slice(SIGNATURE);
    body.extend_from_slice(sealed);
    let content_type =
        "Multipart/Encrypted; Protocol=\"application/HTTP-SPNEGO-session-encrypted\"; \
                        boundary=\"Encrypted Boundary\"";
    let with_end = [body.clone(), b"-- Encrypted Boundary--\r\n".to_vec()].concat();
    for body in [&body, &with_end] {
        let framed = unframe(content_type, body).expect("a tolerated body");
        assert_eq!((framed.header, framed.sealed), (SIGNATURE, &sealed[..]));
    }
    let other = replace(
        &frame(Protocol::Kerberos, 7, SIGNATURE, sealed),
        "Encrypted Boundary",
        "b1",
    );
    let framed = unframe(
        "multipart/encrypted;protocol=application/HTTP-Kerberos-session-encrypted;boundary=b1",
        &other,
    );
    assert!(framed.is_ok(), "{framed:?}");
}

fn refused(content_type: &str, body: &[u8]) -> String {
    unframe(content_type, body)
        .expect_err("a body unframe must refuse")
        .to_string()
}

#[test]
fn a_length_that_does_not_match_is_refused() {
    let body = frame(Protocol::Spnego, 6, SIGNATURE, b"12345");
    assert_eq!(
        refused(&spnego_type(), &body),
        "the encrypted reply is malformed: it declares 6 bytes of envelope but holds 5"
    );
    let body = replace(
        &frame(Protocol::Spnego, 5, &[], b"12345"),
        "Length=5",
        "Length=five",
    );
    assert!(refused(&spnego_type(), &body).ends_with("Length `five` is not a number"));
    let body = replace(&frame(Protocol::Spnego, 5, &[], b"12345"), ";Length=5", "");
    assert!(refused(&spnego_type(), &body).ends_with("gives no OriginalContent Length"));
}

#[test]
fn a_wrong_content_type_is_refused() {
    let body = frame(Protocol::Spnego, 5, SIGNATURE, b"12345");
    assert!(
        refused("application/soap+xml;charset=UTF-8", &body).ends_with("not `multipart/encrypted`")
    );
    assert!(refused(
        "multipart/encrypted;protocol=\"application/HTTP-CredSSP-session-encrypted\"",
        &body
    )
    .ends_with("it names the unknown protocol `application/HTTP-CredSSP-session-encrypted`"));
    assert!(
        refused("multipart/encrypted;boundary=\"Encrypted Boundary\"", &body)
            .ends_with("its content type names no protocol")
    );
    // the header says Kerberos, the part says SPNEGO
    assert!(refused(&content_type(Protocol::Kerberos), &body).contains(
        "its first part is `application/HTTP-SPNEGO-session-encrypted`, not \
         `application/HTTP-Kerberos-session-encrypted`"
    ));
}

#[test]
fn broken_bodies_are_refused_with_what_is_wrong() {
    let good = frame(Protocol::Spnego, 5, SIGNATURE, b"12345");
    let ct = spnego_type();
    assert!(refused(&ct, b"").ends_with("does not start with the boundary `--Encrypted Boundary`"));
    let first_only = &good[..good.len() / 3];
    assert!(refused(&ct, first_only).ends_with("one MIME part where two are needed"));
    let text = replace(&good, "octet-stream", "json");
    assert!(refused(&ct, &text).contains("not `Content-Type: application/octet-stream`"));
    let header_cut = frame(Protocol::Spnego, 0, &[], &[]);
    let header_cut = &header_cut[..header_cut.len() - 26];
    assert!(refused(&ct, header_cut).ends_with("shorter than its 4-byte header length"));
    let mut too_long = frame(Protocol::Spnego, 5, SIGNATURE, b"12345");
    let at = too_long
        .windows(4)
        .position(|w| w == b"\x10\x00\x00\x00")
        .expect("the header length");
    too_long[at] = 0x40;
    assert!(refused(&ct, &too_long).contains("security header length 64 is more than"));
}

#[test]
fn no_prefix_of_a_body_panics() {
    let good = frame(Protocol::Spnego, 5, SIGNATURE, b"12345");
    for cut in 0..good.len() {
        let _ = unframe(&spnego_type(), &good[..cut]);
    }
}
