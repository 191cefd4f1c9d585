//! The blocking sockets the DNS client talks through: the server's address, one connected UDP
//! socket for the queries, and one TCP connection per message. Nothing here reads DNS messages;
//! the only DNS it knows is RFC 1035's two-byte length prefix on TCP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use crate::error::dns::SocketError;

/// Connect, send and receive limit of a TCP exchange.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);

/// The address of `server`, `host:port` as the config holds it; a bare host or address means
/// port 53.
pub(super) fn resolve(server: &str) -> Result<SocketAddr, SocketError> {
    let has_port = server.parse::<std::net::IpAddr>().is_err()
        && server
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    let found = if has_port {
        server.to_socket_addrs()
    } else {
        (server.trim_matches(['[', ']']), 53).to_socket_addrs()
    };
    found
        .map_err(SocketError::Resolve)?
        .next()
        .ok_or(SocketError::NoAddress)
}

/// A UDP socket connected to the server: it sends datagrams there and receives only its answers.
pub(super) struct UdpLink {
    socket: UdpSocket,
    address: SocketAddr,
}

impl UdpLink {
    pub(super) fn connect(address: SocketAddr) -> Result<Self, SocketError> {
        let local: SocketAddr = if address.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(local).map_err(SocketError::UdpOpen)?;
        socket.connect(address).map_err(SocketError::UdpConnect)?;
        Ok(Self { socket, address })
    }

    pub(super) fn send(&self, bytes: &[u8]) -> Result<(), SocketError> {
        self.socket
            .send(bytes)
            .map(drop)
            .map_err(|e| udp_error(self.address, e))
    }

    /// The next datagram into `buffer`, or `None` once `deadline` has passed without one.
    pub(super) fn receive<'b>(
        &self,
        buffer: &'b mut [u8],
        deadline: Instant,
    ) -> Result<Option<&'b [u8]>, SocketError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let _ = self.socket.set_read_timeout(Some(left));
        match self.socket.recv(buffer) {
            Ok(n) => Ok(Some(&buffer[..n])),
            Err(e) if is_timeout(&e) => Ok(None),
            Err(e) => Err(udp_error(self.address, e)),
        }
    }
}

fn udp_error(address: SocketAddr, source: std::io::Error) -> SocketError {
    if source.kind() == std::io::ErrorKind::ConnectionRefused {
        SocketError::UdpRefused { address }
    } else {
        SocketError::Udp { address, source }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// One message over TCP (two-byte length prefix, RFC 1035 section 4.2.2) and its answer.
pub(super) fn tcp_exchange(address: SocketAddr, message: &[u8]) -> Result<Vec<u8>, SocketError> {
    TcpLink::connect(address)?.exchange(message)
}

/// A TCP connection to the server that carries several messages in turn, as a GSS-TSIG
/// negotiation and the updates signed with it do.
pub(super) struct TcpLink {
    stream: TcpStream,
}

impl TcpLink {
    pub(super) fn connect(address: SocketAddr) -> Result<Self, SocketError> {
        let stream = TcpStream::connect_timeout(&address, TCP_TIMEOUT).map_err(|source| {
            if is_timeout(&source) {
                SocketError::TcpConnectTimeout {
                    address,
                    seconds: TCP_TIMEOUT.as_secs(),
                }
            } else {
                SocketError::TcpConnect { address, source }
            }
        })?;
        let _ = stream.set_read_timeout(Some(TCP_TIMEOUT));
        let _ = stream.set_write_timeout(Some(TCP_TIMEOUT));
        Ok(Self { stream })
    }

    /// Sends one message and reads one answer.
    pub(super) fn exchange(&mut self, message: &[u8]) -> Result<Vec<u8>, SocketError> {
        let length = u16::try_from(message.len()).map_err(|_| SocketError::TooLong {
            length: message.len(),
        })?;
        let mut framed = length.to_be_bytes().to_vec();
        framed.extend_from_slice(message);
        self.stream
            .write_all(&framed)
            .map_err(SocketError::TcpSend)?;
        let lost = |e: std::io::Error| {
            if is_timeout(&e) {
                SocketError::TcpTimeout {
                    seconds: TCP_TIMEOUT.as_secs(),
                }
            } else {
                SocketError::TcpLost(e)
            }
        };
        let mut prefix = [0u8; 2];
        self.stream.read_exact(&mut prefix).map_err(lost)?;
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        self.stream.read_exact(&mut answer).map_err(lost)?;
        Ok(answer)
    }
}
