//! One LDAP session over TCP: the SASL `GSSAPI` bind (RFC 4752) that turns on the
//! integrity-protected security layer, then requests and their responses. Every read is bounded
//! by one deadline for the whole session and by a size cap per message and per session.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use kmsconf_gssapi::{Credentials, KerberosContext, Step};

use super::ber;
use super::message::{self, Entry, Filter, Scope};
use crate::deadline::read_exact_by;
use crate::error::ldap::LdapError;

/// The largest message kmsconf reads (an activation object with its licences is a few KB).
const MAX_MESSAGE: usize = 4 << 20;
/// The most a session reads in all (a forest's activation objects are a few KB each).
const MAX_SESSION: usize = 16 << 20;
/// The most entries one search returns: a forest holds one activation object per volume
/// licensing key, a handful.
const MAX_ENTRIES: usize = 10_000;
/// SASL security layers (RFC 4752 section 3.3): integrity protection.
const INTEGRITY: u8 = 0x02;

/// A bound LDAP session; unbinds when dropped.
pub struct Connection<'c> {
    stream: TcpStream,
    timeout: Duration,
    deadline: Instant,
    next_id: i32,
    layer: Option<KerberosContext<'c>>,
    /// Plain LDAP bytes received and not yet read as messages.
    pending: Vec<u8>,
    read: usize,
}

impl<'c> Connection<'c> {
    /// Connects to `host:port` at one of `addresses` (none: the system resolves `host`), each
    /// connect within `connect_within`; everything this session reads must arrive by `deadline`.
    pub fn open(
        host: &str,
        port: u16,
        addresses: &[IpAddr],
        deadline: Instant,
        connect_within: Duration,
    ) -> Result<Self, LdapError> {
        let left = deadline.saturating_duration_since(Instant::now());
        // the whole seconds messages name: what is left, rounded up
        let timeout = Duration::from_secs(left.as_secs() + u64::from(left.subsec_nanos() > 0));
        let resolve_error = |source| LdapError::Resolve {
            host: host.to_string(),
            source,
        };
        let addresses: Vec<SocketAddr> = if addresses.is_empty() {
            (host, port)
                .to_socket_addrs()
                .map_err(resolve_error)?
                .collect()
        } else {
            addresses
                .iter()
                .map(|a| SocketAddr::new(*a, port))
                .collect()
        };
        if addresses.is_empty() {
            return Err(resolve_error(std::io::ErrorKind::NotFound.into()));
        }
        let mut failed = std::io::Error::from(std::io::ErrorKind::TimedOut);
        for address in &addresses {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match TcpStream::connect_timeout(address, connect_within.min(left)) {
                Ok(stream) => {
                    return Ok(Self {
                        stream,
                        timeout,
                        deadline,
                        next_id: 1,
                        layer: None,
                        pending: Vec::new(),
                        read: 0,
                    })
                }
                Err(e) => failed = e,
            }
        }
        Err(LdapError::Connect(failed))
    }

    /// Binds with SASL `GSSAPI` as `credentials`' principal to `service` (`ldap/dc1.corp.example`)
    /// and turns on the integrity (signing) layer; refuses a server that offers none.
    pub fn bind(&mut self, credentials: &'c Credentials, service: &str) -> Result<(), LdapError> {
        let mut context = credentials.kerberos_context(service)?;
        let mut input: Option<Vec<u8>> = None;
        loop {
            let (token, complete) = match context.step(input.as_deref())? {
                Step::Continue(t) => (t, false),
                Step::Complete(t) => (t, true),
            };
            let answer = self.bind_step(Some(&token))?;
            if complete {
                input = answer;
                break;
            }
            input = Some(answer.unwrap_or_default());
        }
        // the server's wrapped offer: its layers and largest buffer (RFC 4752 section 3.1)
        let offer = match input {
            Some(token) if !token.is_empty() => token,
            _ => self.bind_step(None)?.unwrap_or_default(),
        };
        let offer = context.unwrap(&offer)?;
        if offer.len() != 4 || offer[0] & INTEGRITY == 0 {
            return Err(LdapError::NoIntegrityLayer);
        }
        let choice = context.wrap(&[INTEGRITY, offer[1], offer[2], offer[3]])?;
        let last = self.request(message::sasl_bind("GSSAPI", Some(&choice)))?;
        let done = self.bind_result(last)?;
        if done.code != 0 {
            return Err(LdapError::BindRefused {
                code: done.code,
                message: done.message,
            });
        }
        self.layer = Some(context);
        Ok(())
    }

    /// One bind round: the server's SASL credentials while the bind is in progress.
    fn bind_step(&mut self, token: Option<&[u8]>) -> Result<Option<Vec<u8>>, LdapError> {
        let id = self.request(message::sasl_bind("GSSAPI", token))?;
        let result = self.bind_result(id)?;
        match result.code {
            message::BIND_IN_PROGRESS | 0 => Ok(result.sasl_credentials),
            code => Err(LdapError::BindRefused {
                code,
                message: result.message,
            }),
        }
    }

    fn bind_result(&mut self, id: i32) -> Result<message::LdapResult, LdapError> {
        let reply = self.receive()?;
        let r = message::response(&reply)?;
        if r.id != i64::from(id) || r.tag != message::BIND_RESPONSE {
            return Err(self.unexpected(&r));
        }
        message::result(r.body)
    }

    /// The entries under `base` that match `filter`, with `attributes`.
    pub fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &Filter,
        attributes: &[&str],
    ) -> Result<Vec<Entry>, LdapError> {
        let id = self.request(message::search(base, scope, filter, attributes))?;
        let mut entries = Vec::new();
        loop {
            let reply = self.receive()?;
            let r = message::response(&reply)?;
            if r.id != i64::from(id) {
                return Err(self.unexpected(&r));
            }
            match r.tag {
                message::SEARCH_ENTRY if entries.len() == MAX_ENTRIES => {
                    return Err(LdapError::TooManyEntries { limit: MAX_ENTRIES })
                }
                message::SEARCH_ENTRY => entries.push(message::entry(r.body)?),
                message::SEARCH_REFERENCE => {}
                message::SEARCH_DONE => {
                    let done = message::result(r.body)?;
                    return match done.code {
                        0 => Ok(entries),
                        code => Err(LdapError::Refused {
                            operation: "search",
                            dn: base.to_string(),
                            code,
                            message: done.message,
                        }),
                    };
                }
                _ => return Err(self.unexpected(&r)),
            }
        }
    }

    /// Deletes the entry at exactly `dn`.
    pub fn delete(&mut self, dn: &str) -> Result<(), LdapError> {
        let id = self.request(message::delete(dn))?;
        let reply = self.receive()?;
        let r = message::response(&reply)?;
        if r.id != i64::from(id) || r.tag != message::DELETE_RESPONSE {
            return Err(self.unexpected(&r));
        }
        let done = message::result(r.body)?;
        match done.code {
            0 => Ok(()),
            code => Err(LdapError::Refused {
                operation: "delete",
                dn: dn.to_string(),
                code,
                message: done.message,
            }),
        }
    }

    /// A response that answers nothing kmsconf asked: the server's notice of disconnection, or
    /// a protocol error.
    fn unexpected(&self, r: &message::Response) -> LdapError {
        if r.tag == message::EXTENDED_RESPONSE {
            let said = message::result(r.body)
                .map(|d| d.message)
                .unwrap_or_default();
            return LdapError::Disconnected(said);
        }
        LdapError::Malformed("a response to a request kmsconf did not send")
    }

    /// Sends one request (wrapped once the security layer is on); its message ID.
    fn request(&mut self, op: Vec<u8>) -> Result<i32, LdapError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&message::envelope(id, op))?;
        Ok(id)
    }

    fn send(&mut self, plain: &[u8]) -> Result<(), LdapError> {
        let framed = match &self.layer {
            Some(context) => {
                let token = context.wrap(plain)?;
                let length = u32::try_from(token.len())
                    .map_err(|_| LdapError::TooLarge { limit: MAX_MESSAGE })?;
                [length.to_be_bytes().as_slice(), &token].concat()
            }
            None => plain.to_vec(),
        };
        let left = self.left()?;
        let _ = self.stream.set_write_timeout(Some(left));
        self.stream.write_all(&framed).map_err(|e| self.io(e))
    }

    /// The next whole LDAP message.
    fn receive(&mut self) -> Result<Vec<u8>, LdapError> {
        loop {
            if let Some(n) = ber::total_length(&self.pending)? {
                if n > MAX_MESSAGE {
                    return Err(LdapError::TooLarge { limit: MAX_MESSAGE });
                }
                if self.pending.len() >= n {
                    return Ok(self.pending.drain(..n).collect());
                }
            }
            self.fill()?;
        }
    }

    /// Reads more plain bytes: a wrapped frame once the security layer is on, else what the
    /// message being read still lacks.
    fn fill(&mut self) -> Result<(), LdapError> {
        if self.layer.is_some() {
            let mut length = [0u8; 4];
            self.read_exact(&mut length)?;
            let length = u32::from_be_bytes(length) as usize;
            if length > MAX_MESSAGE {
                return Err(LdapError::TooLarge { limit: MAX_MESSAGE });
            }
            let mut token = vec![0u8; length];
            self.read_exact(&mut token)?;
            let plain = match &self.layer {
                Some(context) => context.unwrap(&token)?,
                None => token,
            };
            self.pending.extend_from_slice(&plain);
            return Ok(());
        }
        let wanted = match ber::total_length(&self.pending)? {
            Some(n) => n.saturating_sub(self.pending.len()),
            // the tag and the first length byte, then the long length's digits
            None if self.pending.len() < 2 => 2 - self.pending.len(),
            None => 1,
        };
        if self.pending.len() + wanted > MAX_MESSAGE {
            return Err(LdapError::TooLarge { limit: MAX_MESSAGE });
        }
        let mut more = vec![0u8; wanted.max(1)];
        self.read_exact(&mut more)?;
        self.pending.extend_from_slice(&more);
        Ok(())
    }

    fn read_exact(&mut self, buffer: &mut [u8]) -> Result<(), LdapError> {
        self.read += buffer.len();
        if self.read > MAX_SESSION {
            return Err(LdapError::SessionTooLarge { limit: MAX_SESSION });
        }
        read_exact_by(&mut self.stream, buffer, self.deadline).map_err(|e| self.io(e))
    }

    fn left(&self) -> Result<Duration, LdapError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LdapError::Timeout(self.timeout));
        }
        Ok(left)
    }

    fn io(&self, e: std::io::Error) -> LdapError {
        match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                LdapError::Timeout(self.timeout)
            }
            _ => LdapError::Io(e),
        }
    }
}

impl Drop for Connection<'_> {
    fn drop(&mut self) {
        if self.left().is_ok() {
            let id = self.next_id;
            let _ = self.send(&message::envelope(id, message::unbind()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_goes_to_the_given_addresses_and_never_past_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let port = listener.local_addr().expect("address").port();
        let loopback = [IpAddr::from([127, 0, 0, 1])];
        let soon = Instant::now() + Duration::from_secs(5);
        // the name is not looked up when DNS gave the addresses
        let c = Connection::open("dc1.invalid", port, &loopback, soon, Duration::from_secs(1));
        assert!(c.is_ok(), "{:?}", c.err());
        drop(listener);
        let refused =
            Connection::open("dc1.invalid", port, &loopback, soon, Duration::from_secs(1));
        assert!(
            matches!(&refused, Err(LdapError::Connect(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused),
            "{:?}",
            refused.err()
        );
        let past = Instant::now();
        let late = Connection::open("dc1.invalid", port, &loopback, past, Duration::from_secs(1));
        assert!(
            matches!(&late, Err(LdapError::Connect(e)) if e.kind() == std::io::ErrorKind::TimedOut),
            "{:?}",
            late.err()
        );
    }
}
