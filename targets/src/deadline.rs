//! Reads bounded by one deadline for a whole exchange rather than a timeout per read, so a peer
//! that sends a byte now and then cannot hold kmsconf past the deadline (the DNS server over TCP,
//! the KDC).

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::Instant;

/// Fills `buffer` from `stream` by `deadline`: each read waits only for the time left. A
/// deadline that passes is a `TimedOut` error; a stream that ends first, `UnexpectedEof`.
pub fn read_exact_by(
    stream: &mut TcpStream,
    mut buffer: &mut [u8],
    deadline: Instant,
) -> io::Result<()> {
    while !buffer.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(buffer) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buffer = &mut buffer[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
