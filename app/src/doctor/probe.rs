//! The port probe: one TCP connect to the KMS port from the machine running kmsconf, the only
//! network I/O doctor does besides discovery and the DNS query.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The result of the TCP connect to the KMS port.
#[derive(Debug, Clone)]
pub struct PortProbe {
    pub address: String,
    pub port: u16,
    /// How long the connection took, or why it failed.
    pub result: Result<Duration, ProbeError>,
}

/// Why the TCP connect to the KMS port failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The address does not resolve here: the port could not be tried at all.
    #[error("cannot resolve `{address}`: {reason}")]
    Resolve { address: String, reason: String },
    #[error("`{address}` resolves to no address")]
    NoAddress { address: String },
    #[error("no answer from {endpoint} within {seconds}s")]
    Timeout { endpoint: SocketAddr, seconds: u64 },
    #[error("{endpoint}: {reason}")]
    Refused {
        endpoint: SocketAddr,
        reason: String,
    },
}

/// Connects to `address:port` (every address the name resolves to, in turn) within `timeout`:
/// what the guide does with `telnet host 1688`.
pub fn probe_port(address: &str, port: u16, timeout: Duration) -> PortProbe {
    let start = Instant::now();
    let result = (|| {
        let addrs: Vec<_> = (address, port)
            .to_socket_addrs()
            .map_err(|e| ProbeError::Resolve {
                address: address.to_string(),
                reason: e.to_string(),
            })?
            .collect();
        let mut last = ProbeError::NoAddress {
            address: address.to_string(),
        };
        for endpoint in addrs {
            match TcpStream::connect_timeout(&endpoint, timeout) {
                Ok(_) => return Ok(start.elapsed()),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    last = ProbeError::Timeout {
                        endpoint,
                        seconds: timeout.as_secs(),
                    }
                }
                Err(e) => {
                    last = ProbeError::Refused {
                        endpoint,
                        reason: e.to_string(),
                    }
                }
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
