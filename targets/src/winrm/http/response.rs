//! Reads one HTTP/1.1 response from any buffered reader: the head (after any blank lines), then a
//! `Content-Length`, chunked or to-the-end body. Every buffer has a cap, and all arithmetic on
//! sizes the peer sent is checked, so no answer can make it panic or grow without bound. The
//! deadline is the reader's business (see [`super::Deadline`]).

use std::io::{self, BufRead, Read};

use super::{HttpError, Response};

/// The largest response head kmsconf reads.
pub(super) const MAX_HEAD: usize = 64 * 1024;
/// The largest response body kmsconf reads (WinRM envelopes are at most MaxEnvelopeSize, 150 KiB
/// by default; a stream of output comes in several).
pub(super) const MAX_BODY: usize = 16 * 1024 * 1024;
/// The longest chunk-size line (`1a2b;name=value`) kmsconf reads.
const MAX_CHUNK_LINE: usize = 1024;

/// One response read from `reader`, and whether the connection ends after it (`Connection:
/// close`, HTTP/1.0, or a body that runs to the end).
pub(super) fn read_response<R: BufRead>(reader: &mut R) -> Result<(Response, bool), HttpError> {
    let head = read_head(reader)?;
    let mut parsed_headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut parsed_headers);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HttpError::Malformed("a cut head".into())),
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    }
    let mut response = Response {
        status: parsed.code.unwrap_or(0),
        headers: parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).trim().to_string(),
                )
            })
            .collect(),
        body: Vec::new(),
    };
    let mut closed = response
        .header("Connection")
        .is_some_and(|c| c.eq_ignore_ascii_case("close"))
        || parsed.version == Some(0);
    let (body, to_the_end) = read_body(reader, &response)?;
    response.body = body;
    closed |= to_the_end;
    Ok((response, closed))
}

/// Reads up to and including the blank line that ends a response head. Blank lines before it
/// are skipped, but count against the cap with the head.
fn read_head<R: BufRead>(reader: &mut R) -> Result<Vec<u8>, HttpError> {
    let mut head = Vec::new();
    let mut skipped = 0usize;
    loop {
        let before = head.len();
        let room = MAX_HEAD.saturating_sub(head.len() + skipped) as u64 + 1;
        let n = reader.take(room).read_until(b'\n', &mut head)?;
        if n == 0 {
            return Err(HttpError::Closed(if before == 0 {
                " without answering"
            } else {
                " in the middle of an answer"
            }));
        }
        if head.len() + skipped > MAX_HEAD {
            return Err(HttpError::Malformed(format!(
                "a response head over {} KiB",
                MAX_HEAD / 1024
            )));
        }
        if head == b"\r\n" || head == b"\n" {
            skipped += head.len();
            head.clear();
            continue;
        }
        if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
            return Ok(head);
        }
    }
}

/// The body, and whether it ran to the end of the connection.
fn read_body<R: BufRead>(
    reader: &mut R,
    response: &Response,
) -> Result<(Vec<u8>, bool), HttpError> {
    let chunked = response
        .header("Transfer-Encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return read_chunked(reader).map(|body| (body, false));
    }
    let length = match response.header("Content-Length") {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| HttpError::Malformed(format!("Content-Length `{v}`")))?,
        None if response.status < 200 || response.status == 204 || response.status == 304 => 0,
        None => {
            let mut body = Vec::new();
            reader.take(MAX_BODY as u64 + 1).read_to_end(&mut body)?;
            if body.len() > MAX_BODY {
                return Err(over_cap());
            }
            return Ok((body, true));
        }
    };
    if length > MAX_BODY {
        return Err(HttpError::Malformed(format!(
            "a {length}-byte body (the limit is {MAX_BODY})"
        )));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(cut)?;
    Ok((body, false))
}

fn read_chunked<R: BufRead>(reader: &mut R) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    loop {
        let mut line = Vec::new();
        reader
            .take(MAX_CHUNK_LINE as u64)
            .read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Err(HttpError::Closed(" in the middle of an answer"));
        }
        if !line.ends_with(b"\n") {
            return Err(HttpError::Malformed(format!(
                "a chunk-size line over {MAX_CHUNK_LINE} bytes"
            )));
        }
        let text = String::from_utf8_lossy(&line);
        let size_text = text.trim().split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| HttpError::Malformed(format!("chunk size `{size_text}`")))?;
        if size == 0 {
            read_trailers(reader)?;
            return Ok(body);
        }
        let start = body.len();
        let end = start
            .checked_add(size)
            .filter(|end| *end <= MAX_BODY)
            .ok_or_else(over_cap)?;
        body.resize(end, 0);
        reader.read_exact(&mut body[start..]).map_err(cut)?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).map_err(cut)?;
    }
}

/// The trailers after the last chunk, up to the blank line; together no longer than a head.
fn read_trailers<R: BufRead>(reader: &mut R) -> Result<(), HttpError> {
    let mut total = 0usize;
    loop {
        let mut trailer = Vec::new();
        let room = MAX_HEAD.saturating_sub(total) as u64 + 1;
        reader.take(room).read_until(b'\n', &mut trailer)?;
        total += trailer.len();
        if trailer.is_empty() || trailer == b"\r\n" || trailer == b"\n" {
            return Ok(());
        }
        if total > MAX_HEAD {
            return Err(HttpError::Malformed(format!(
                "chunk trailers over {} KiB",
                MAX_HEAD / 1024
            )));
        }
    }
}

fn over_cap() -> HttpError {
    HttpError::Malformed(format!("a body over {MAX_BODY} bytes (the limit)"))
}

fn cut(e: io::Error) -> HttpError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        HttpError::Closed(" in the middle of an answer")
    } else {
        HttpError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read(bytes: &[u8]) -> Result<(Response, bool), HttpError> {
        read_response(&mut io::Cursor::new(bytes))
    }

    #[test]
    fn a_chunk_size_that_would_wrap_is_refused_by_the_cap() {
        let e = read(
            b"HTTP/1.1 401 No\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\nffffffffffffffff\r\n",
        )
        .expect_err("refused");
        assert!(e.to_string().contains("a body over 16777216 bytes"), "{e}");
    }

    #[test]
    fn endless_trailers_and_preambles_stop_at_the_head_cap() {
        let mut bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
        bytes.extend(b"X: y\r\n".repeat(20_000));
        let e = read(&bytes).expect_err("trailers");
        assert!(e.to_string().contains("chunk trailers over 64 KiB"), "{e}");
        let mut bytes = b"\r\n".repeat(40_000);
        bytes.extend(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let e = read(&bytes).expect_err("preamble");
        assert!(e.to_string().contains("a response head over 64 KiB"), "{e}");
    }

    #[test]
    fn a_body_to_the_end_closes_the_connection() {
        let (r, closed) = read(b"HTTP/1.1 200 OK\r\n\r\nabc").expect("read");
        assert_eq!((r.body.as_slice(), closed), (b"abc".as_slice(), true));
    }

    fn chunked(chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for c in chunks {
            out.extend(format!("{:x}\r\n", c.len()).as_bytes());
            out.extend(c);
            out.extend(b"\r\n");
        }
        out.extend(b"0\r\n\r\n");
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any bytes at all: an answer or an error, never a panic, never more than the caps.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let Ok((r, _)) = read(&bytes) {
                prop_assert!(r.body.len() <= MAX_BODY);
            }
        }

        /// A valid head followed by arbitrary text where the chunks go, sizes included.
        #[test]
        fn arbitrary_chunk_lines_never_panic(tail in "([0-9a-fA-F]{1,20}(;[a-z=]{0,5})?\r\n[a-z]{0,8}\r\n){0,6}") {
            let bytes = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".as_slice(), tail.as_bytes()].concat();
            if let Ok((r, _)) = read(&bytes) {
                prop_assert!(r.body.len() <= MAX_BODY);
            }
        }

        /// A well-formed chunked answer reads back as the concatenation of its chunks.
        #[test]
        fn chunked_bodies_round_trip(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..64), 0..8)) {
            let (r, closed) = read(&chunked(&chunks)).expect("well formed");
            prop_assert_eq!(r.body, chunks.concat());
            prop_assert!(!closed);
        }
    }
}
