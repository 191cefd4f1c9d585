//! The `multipart/encrypted` body of MS-WSMV 2.2.9.1: how a sealed SOAP envelope travels over
//! plain HTTP. Pure framing: the sealing itself (NTLM or Kerberos, through the authentication
//! context) is the caller's. CredSSP's `multipart/x-multi-encrypted` is not supported.
//!
//! The body is two MIME parts and an end marker. The first part names the protocol and the
//! plaintext's length; the second holds the 32-bit little-endian length of the security trailer
//! (NTLM's 16-byte signature, or Kerberos' wrap token header), the trailer, then the sealed
//! envelope.

pub use crate::error::winrm::FrameError;

/// The MIME boundary Windows and every client use.
pub const BOUNDARY: &str = "Encrypted Boundary";

/// Which security package sealed the body; it follows the HTTP authentication scheme
/// (`Negotiate` is SPNEGO, `Kerberos` is Kerberos).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Spnego,
    Kerberos,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Self::Spnego => "application/HTTP-SPNEGO-session-encrypted",
            Self::Kerberos => "application/HTTP-Kerberos-session-encrypted",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Spnego, Self::Kerberos]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

/// The HTTP `Content-Type` of a body sealed with `p`.
pub fn content_type(p: Protocol) -> String {
    format!(
        "multipart/encrypted;protocol=\"{}\";boundary=\"{BOUNDARY}\"",
        p.name()
    )
}

/// The HTTP body carrying a sealed envelope: `plain_len` is the length of the plaintext
/// envelope (plus the cipher's padding, for the packages that pad), `header` the security
/// trailer and `sealed` the encrypted envelope.
pub fn frame(p: Protocol, plain_len: usize, header: &[u8], sealed: &[u8]) -> Vec<u8> {
    let head = format!(
        "--{BOUNDARY}\r\n\tContent-Type: {}\r\n\
         \tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={plain_len}\r\n\
         --{BOUNDARY}\r\n\tContent-Type: application/octet-stream\r\n",
        p.name()
    );
    let trailer_len = u32::try_from(header.len()).unwrap_or(u32::MAX);
    let end = format!("--{BOUNDARY}--\r\n");
    let mut body = Vec::with_capacity(head.len() + 4 + header.len() + sealed.len() + end.len());
    body.extend_from_slice(head.as_bytes());
    body.extend_from_slice(&trailer_len.to_le_bytes());
    body.extend_from_slice(header);
    body.extend_from_slice(sealed);
    body.extend_from_slice(end.as_bytes());
    body
}

/// A received body, split: still sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framed<'a> {
    /// The protocol the reply names; the caller checks it is the one it authenticated with.
    pub protocol: Protocol,
    /// `OriginalContent`'s `Length`: what the unsealed envelope must measure.
    pub plain_len: usize,
    pub header: &'a [u8],
    pub sealed: &'a [u8],
}

fn error(what: impl Into<String>) -> FrameError {
    FrameError(what.into())
}

/// Splits a reply's body, given its HTTP `Content-Type`. Tolerates what servers really send:
/// parameter names in any case, quoted or bare values, another boundary than
/// [`BOUNDARY`], spaces between `--` and the boundary (Exchange), and a missing end marker.
/// Refuses anything else, and a sealed part whose length is not `Length`: NTLM and Kerberos
/// seal in place, so the sealed envelope is exactly as long as the plaintext (Kerberos' RC4
/// padding included in both).
pub fn unframe<'a>(content_type: &str, body: &'a [u8]) -> Result<Framed<'a>, FrameError> {
    let (protocol, boundary) = read_content_type(content_type)?;
    let rest = boundary_line(body, &boundary).ok_or_else(|| {
        error(format!(
            "it does not start with the boundary `--{boundary}`"
        ))
    })?;
    let second = find_boundary_line(rest, &boundary)
        .ok_or_else(|| error("it has one MIME part where two are needed"))?;
    let plain_len = read_first_part(&rest[..second.0], protocol)?;
    let payload = octet_stream(second.1)?;
    let payload = strip_end(payload, &boundary);
    let (len, payload) = payload
        .split_first_chunk::<4>()
        .ok_or_else(|| error("the encrypted part is shorter than its 4-byte header length"))?;
    let header_len = usize::try_from(u32::from_le_bytes(*len)).unwrap_or(usize::MAX);
    if header_len > payload.len() {
        return Err(error(format!(
            "its security header length {header_len} is more than the {} bytes that follow",
            payload.len()
        )));
    }
    let (header, sealed) = payload.split_at(header_len);
    if sealed.len() != plain_len {
        return Err(error(format!(
            "it declares {plain_len} bytes of envelope but holds {}",
            sealed.len()
        )));
    }
    Ok(Framed {
        protocol,
        plain_len,
        header,
        sealed,
    })
}

/// The protocol and boundary of `multipart/encrypted;protocol="...";boundary="..."`.
fn read_content_type(content_type: &str) -> Result<(Protocol, String), FrameError> {
    let mut parts = content_type.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default();
    if !media.eq_ignore_ascii_case("multipart/encrypted") {
        return Err(error(format!(
            "its content type is `{content_type}`, not `multipart/encrypted`"
        )));
    }
    let mut protocol = None;
    let mut boundary = BOUNDARY.to_string();
    for param in parts {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "protocol" => {
                protocol =
                    Some(Protocol::from_name(value).ok_or_else(|| {
                        error(format!("it names the unknown protocol `{value}`"))
                    })?);
            }
            "boundary" if !value.is_empty() => boundary = value.to_string(),
            _ => {}
        }
    }
    let protocol = protocol.ok_or_else(|| error("its content type names no protocol"))?;
    Ok((protocol, boundary))
}

/// The first part's headers: its `Content-Type` must be the protocol, and `OriginalContent`
/// must give the plaintext's `Length`.
fn read_first_part(part: &[u8], protocol: Protocol) -> Result<usize, FrameError> {
    let text = std::str::from_utf8(part).map_err(|_| error("its first part is not text"))?;
    let mut length = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(error(format!("its first part has the line `{line}`")));
        };
        let value = value.trim();
        if name.trim().eq_ignore_ascii_case("content-type") {
            if Protocol::from_name(value) != Some(protocol) {
                return Err(error(format!(
                    "its first part is `{value}`, not `{}`",
                    protocol.name()
                )));
            }
        } else if name.trim().eq_ignore_ascii_case("originalcontent") {
            length = value.split(';').find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim().eq_ignore_ascii_case("length").then(|| v.trim())
            });
        }
    }
    let length = length.ok_or_else(|| error("its first part gives no OriginalContent Length"))?;
    length.parse().map_err(|_| {
        error(format!(
            "its OriginalContent Length `{length}` is not a number"
        ))
    })
}

/// The second part after its one header line, which must say `application/octet-stream`.
fn octet_stream(part: &[u8]) -> Result<&[u8], FrameError> {
    let end = part
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| error("its second part has no header line"))?;
    let line = String::from_utf8_lossy(&part[..end]);
    let value = line
        .trim()
        .split_once(':')
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.trim());
    if value.is_some_and(|v| v.eq_ignore_ascii_case("application/octet-stream")) {
        Ok(&part[end + 2..])
    } else {
        Err(error(format!(
            "its second part starts `{line}`, not `Content-Type: application/octet-stream`"
        )))
    }
}

/// `--`, optional spaces or tabs, the boundary and CRLF at the start of `input`: what follows.
fn boundary_line<'a>(input: &'a [u8], boundary: &str) -> Option<&'a [u8]> {
    let rest = input.strip_prefix(b"--")?;
    let rest = trim_blanks(rest);
    rest.strip_prefix(boundary.as_bytes())?
        .strip_prefix(b"\r\n")
}

/// The first boundary line that starts a line of `input`: where it starts, and what follows.
fn find_boundary_line<'a>(input: &'a [u8], boundary: &str) -> Option<(usize, &'a [u8])> {
    (0..input.len())
        .filter(|&i| i == 0 || input[..i].ends_with(b"\n"))
        .find_map(|i| boundary_line(&input[i..], boundary).map(|rest| (i, rest)))
}

/// The payload without the `--boundary--` end marker (and its CRLF) when it ends with one.
fn strip_end<'a>(payload: &'a [u8], boundary: &str) -> &'a [u8] {
    let body = payload.strip_suffix(b"\r\n").unwrap_or(payload);
    let Some(body) = body.strip_suffix(format!("{boundary}--").as_bytes()) else {
        return payload;
    };
    let body = trim_blanks_end(body);
    body.strip_suffix(b"--").unwrap_or(payload)
}

fn trim_blanks(input: &[u8]) -> &[u8] {
    let n = input
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    &input[n..]
}

fn trim_blanks_end(input: &[u8]) -> &[u8] {
    let n = input
        .iter()
        .rev()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    &input[..input.len() - n]
}

#[cfg(test)]
mod tests;
