//! The blocking sockets the DNS client talks through: the server's address, UDP sockets for the
//! queries, and one TCP connection per message. Nothing here reads DNS messages;
//! the only DNS it knows is RFC 1035's two-byte length prefix on TCP.

use std::cell::Cell;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use crate::deadline::read_exact_by;
use crate::error::dns::SocketError;

/// The limit on a TCP connect, and then on each message and its whole answer: one deadline for
/// the exchange, however the server spaces its bytes.
pub(super) const TCP_TIMEOUT: Duration = Duration::from_secs(5);

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

/// A UDP socket to the server. A connected one hears of a closed port at once (the system
/// reports the ICMP "port unreachable" only to connected sockets) but never sees a reply from
/// another address or port; an open one sees those too, and counts them.
pub(super) struct UdpLink {
    socket: UdpSocket,
    address: SocketAddr,
    connected: bool,
    /// replies from elsewhere than `address` (open sockets only): how many, the first's source
    foreign: Cell<(usize, Option<SocketAddr>)>,
}

impl UdpLink {
    pub(super) fn connect(address: SocketAddr) -> Result<Self, SocketError> {
        let link = Self::open(address)?;
        link.socket
            .connect(address)
            .map_err(SocketError::UdpConnect)?;
        Ok(Self {
            connected: true,
            ..link
        })
    }

    /// A socket not connected to the server: replies from anywhere reach it, and
    /// [`Self::receive`] leaves out (and counts) those that do not come from the server.
    pub(super) fn open(address: SocketAddr) -> Result<Self, SocketError> {
        let local: SocketAddr = if address.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(local).map_err(SocketError::UdpOpen)?;
        Ok(Self {
            socket,
            address,
            connected: false,
            foreign: Cell::new((0, None)),
        })
    }

    pub(super) fn send(&self, bytes: &[u8]) -> Result<(), SocketError> {
        let sent = if self.connected {
            self.socket.send(bytes)
        } else {
            self.socket.send_to(bytes, self.address)
        };
        sent.map(drop).map_err(|e| udp_error(self.address, e))
    }

    /// The next datagram from the server into `buffer`, or `None` once `deadline` has passed
    /// without one.
    pub(super) fn receive<'b>(
        &self,
        buffer: &'b mut [u8],
        deadline: Instant,
    ) -> Result<Option<&'b [u8]>, SocketError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let _ = self.socket.set_read_timeout(Some(left));
            match self.socket.recv_from(buffer) {
                Ok((_, from)) if from != self.address => {
                    let (count, first) = self.foreign.get();
                    self.foreign.set((count + 1, first.or(Some(from))));
                }
                Ok((n, _)) => return Ok(Some(&buffer[..n])),
                Err(e) if is_timeout(&e) => return Ok(None),
                Err(e) => return Err(udp_error(self.address, e)),
            }
        }
    }

    /// How many replies came from elsewhere than the server, and where the first came from.
    pub(super) fn foreign(&self) -> Option<(usize, SocketAddr)> {
        match self.foreign.get() {
            (count, Some(first)) => Some((count, first)),
            _ => None,
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
    tcp_exchange_by(address, message, None)
}

/// [`tcp_exchange`], ended by `deadline` too where there is one (the run's, for a lookup that
/// is part of a longer session).
pub(super) fn tcp_exchange_by(
    address: SocketAddr,
    message: &[u8],
    deadline: Option<Instant>,
) -> Result<Vec<u8>, SocketError> {
    let limit = deadline.map_or(TCP_TIMEOUT, |d| {
        d.saturating_duration_since(Instant::now()).min(TCP_TIMEOUT)
    });
    if limit.is_zero() {
        return Err(SocketError::TcpTimeout { seconds: 0 });
    }
    TcpLink::connect_within(address, limit)?.exchange(message)
}

/// A TCP connection to the server that carries several messages in turn, as a GSS-TSIG
/// negotiation and the updates signed with it do.
pub(super) struct TcpLink {
    stream: TcpStream,
    /// The limit on the connect, and then on each message and its answer.
    limit: Duration,
}

impl TcpLink {
    pub(super) fn connect(address: SocketAddr) -> Result<Self, SocketError> {
        Self::connect_within(address, TCP_TIMEOUT)
    }

    /// A connection made within `limit`, whose exchanges each end within `limit` too.
    fn connect_within(address: SocketAddr, limit: Duration) -> Result<Self, SocketError> {
        let stream = TcpStream::connect_timeout(&address, limit).map_err(|source| {
            if is_timeout(&source) {
                SocketError::TcpConnectTimeout {
                    address,
                    seconds: whole_seconds(limit),
                }
            } else {
                SocketError::TcpConnect { address, source }
            }
        })?;
        Ok(Self { stream, limit })
    }

    /// Sends one message and reads one answer, both within the link's limit from now.
    pub(super) fn exchange(&mut self, message: &[u8]) -> Result<Vec<u8>, SocketError> {
        let length = u16::try_from(message.len()).map_err(|_| SocketError::TooLong {
            length: message.len(),
        })?;
        let limit = self.limit;
        let deadline = Instant::now() + limit;
        let mut framed = length.to_be_bytes().to_vec();
        framed.extend_from_slice(message);
        let lost = |e: std::io::Error| {
            if is_timeout(&e) {
                SocketError::TcpTimeout {
                    seconds: whole_seconds(limit),
                }
            } else {
                SocketError::TcpLost(e)
            }
        };
        let _ = self.stream.set_write_timeout(Some(limit));
        self.stream.write_all(&framed).map_err(|e| {
            if is_timeout(&e) {
                lost(e)
            } else {
                SocketError::TcpSend(e)
            }
        })?;
        let mut prefix = [0u8; 2];
        read_exact_by(&mut self.stream, &mut prefix, deadline).map_err(lost)?;
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        read_exact_by(&mut self.stream, &mut answer, deadline).map_err(lost)?;
        Ok(answer)
    }
}

/// `limit` in whole seconds, rounded up: what messages name.
fn whole_seconds(limit: Duration) -> u64 {
    limit.as_secs() + u64::from(limit.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that drips its answer a byte every 300 ms: every read gets a byte in time, the
    /// exchange as a whole still ends at its deadline.
    #[test]
    fn a_dripping_server_is_cut_at_the_deadline_of_the_exchange() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let _ = s.write_all(&[0xff]);
            for _ in 0..60 {
                std::thread::sleep(Duration::from_millis(300));
                if s.write_all(&[0]).is_err() {
                    return;
                }
            }
        });
        let started = Instant::now();
        let e = tcp_exchange(address, b"query").expect_err("cut");
        assert!(matches!(e, SocketError::TcpTimeout { seconds: 5 }), "{e:?}");
        let took = started.elapsed();
        assert!(took < TCP_TIMEOUT + Duration::from_secs(1), "{took:?}");
    }
}
