//! The port probe: one TCP connect to the KMS port from the machine running kmsconf, the only
//! network I/O doctor does besides discovery and the DNS query.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The result of the TCP connect to the KMS port.
#[derive(Debug, Clone)]
pub struct PortProbe {
    pub address: String,
    pub port: u16,
    /// How long the connection took, or why it failed.
    pub result: Result<Duration, String>,
}

/// Connects to `address:port` (every address the name resolves to, in turn) within `timeout`:
/// what the guide does with `telnet host 1688`.
pub fn probe_port(address: &str, port: u16, timeout: Duration) -> PortProbe {
    let start = Instant::now();
    let result = (|| {
        let addrs: Vec<_> = (address, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve `{address}`: {e}"))?
            .collect();
        let mut last = format!("`{address}` resolves to no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(_) => return Ok(start.elapsed()),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    last = format!("no answer from {addr} within {}s", timeout.as_secs())
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(last)
    })();
    PortProbe {
        address: address.to_string(),
        port,
        result,
    }
}
