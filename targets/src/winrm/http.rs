//! The WinRM client's HTTP/1.1: one persistent connection per host (NTLM authenticates the TCP
//! connection, not the request), plain or TLS, POSTs with a `Content-Length` body, responses with
//! a `Content-Length` or chunked body (read by [`response`]), each exchange within one deadline
//! and every buffer within a cap.

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

mod response;

/// What went wrong on the connection.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Certificate(String),
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("the host closed the connection{0}")]
    Closed(&'static str),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("unreadable HTTP answer: {0}")]
    Malformed(String),
    #[error("cannot use CA file `{path}`: {message}")]
    CaFile { path: String, message: String },
}

/// An HTTP response.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The TCP socket under HTTP (and TLS): every read and write waits at most until the deadline of
/// the exchange under way, so a peer that drips a byte at a time cannot stretch an exchange (or a
/// TLS handshake) past it.
struct Socket {
    tcp: TcpStream,
    deadline: Instant,
}

impl Socket {
    /// The time left before the deadline, as a socket timeout; an error once it has passed.
    fn left(&self) -> io::Result<Option<Duration>> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the deadline passed",
            ));
        }
        Ok(Some(left))
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.set_read_timeout(self.left()?)?;
        self.tcp.read(buf)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.set_write_timeout(self.left()?)?;
        self.tcp.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// TCP or TLS.
enum Stream {
    Plain(Socket),
    Tls(Box<StreamOwned<ClientConnection, Socket>>),
}

impl Stream {
    fn socket(&mut self) -> &mut Socket {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => &mut s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

/// How to check the server's certificate.
#[derive(Debug, Clone)]
pub struct Tls {
    /// PEM file of the CA certificates to trust instead of the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
}

/// One persistent connection to `host:port`.
pub struct Connection {
    stream: BufReader<Stream>,
    /// `Host` header value.
    authority: String,
    /// The server said `Connection: close`, or a response was cut: no further request.
    closed: bool,
}

impl Connection {
    /// Connects (and with `tls`, completes the TLS handshake, so a bad certificate is known now).
    pub fn open(
        host: &str,
        port: u16,
        tls: Option<&Tls>,
        timeout: Duration,
    ) -> Result<Self, HttpError> {
        let address = authority(host, port);
        let tcp = connect(host, port, timeout).map_err(|source| HttpError::Connect {
            address: address.clone(),
            source,
        })?;
        let _ = tcp.set_nodelay(true);
        let socket = Socket {
            tcp,
            deadline: Instant::now() + timeout,
        };
        let stream = match tls {
            None => Stream::Plain(socket),
            Some(tls) => Stream::Tls(Box::new(handshake(host, socket, tls, timeout)?)),
        };
        Ok(Self {
            stream: BufReader::new(stream),
            authority: address,
            closed: false,
        })
    }

    /// The server's own certificate (DER) over TLS, for channel bindings; `None` without TLS.
    pub fn server_certificate(&self) -> Option<Vec<u8>> {
        match self.stream.get_ref() {
            Stream::Plain(_) => None,
            Stream::Tls(tls) => tls
                .conn
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|c| c.as_ref().to_vec()),
        }
    }

    /// Whether the connection can carry another request.
    pub fn is_open(&self) -> bool {
        !self.closed
    }

    /// POSTs `body` to `path` with `headers` and reads the response, the whole exchange within
    /// `timeout` (interim `100 Continue` answers, blank lines and chunk trailers included).
    pub fn post(
        &mut self,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        if self.closed {
            return Err(HttpError::Closed(" after its last answer"));
        }
        let result = self.exchange(path, headers, body, timeout);
        if result.is_err() {
            self.closed = true;
        }
        result
    }

    fn exchange(
        &mut self,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: kmsconf/{}\r\nConnection: keep-alive\r\nContent-Length: {}\r\n",
            self.authority,
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.stream.get_mut().socket().deadline =
            Instant::now() + timeout.max(Duration::from_millis(1));
        let seconds = timeout.as_secs();
        let out = self.stream.get_mut();
        out.write_all(head.as_bytes())
            .and_then(|()| out.write_all(body))
            .and_then(|()| out.flush())
            .map_err(|e| timed_out(e, seconds))?;
        loop {
            let (response, closed) =
                response::read_response(&mut self.stream).map_err(|e| match e {
                    HttpError::Io(e) => timed_out(e, seconds),
                    other => other,
                })?;
            self.closed |= closed;
            // an interim 100 Continue is followed by the real answer
            if response.status != 100 {
                return Ok(response);
            }
        }
    }
}

/// `host:port`, an IPv6 address in brackets.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn timed_out(e: io::Error, seconds: u64) -> HttpError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HttpError::Timeout(seconds),
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => HttpError::Closed(" in the middle of an exchange"),
        _ => HttpError::Io(e),
    }
}

/// Connects to the first address of `host` that answers.
fn connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
    for address in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The TLS client configuration: the CA file's certificates, else the system's roots.
fn client_config(tls: &Tls) -> Result<ClientConfig, HttpError> {
    let mut roots = RootCertStore::empty();
    match &tls.ca_file {
        Some(path) => add_ca_file(&mut roots, path)?,
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(HttpError::Certificate(
                    "no trusted root certificates were found on this machine; set `ca_file` in `[hosts.NAME.winrm]`".into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Certificate(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), HttpError> {
    let shown = path.display().to_string();
    let bad = |message: String| HttpError::CaFile {
        path: shown.clone(),
        message,
    };
    let limit = kmsconf_engine::read::Limit {
        what: "a CA file",
        bytes: 4 << 20,
    };
    let text = kmsconf_engine::read::read_bounded(path, limit).map_err(|e| bad(e.to_string()))?;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(&text) {
        let cert = cert.map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("unusable certificate: {e}")))?;
        count += 1;
    }
    if count == 0 {
        return Err(bad("it holds no PEM certificate".into()));
    }
    Ok(())
}

fn handshake(
    host: &str,
    mut socket: Socket,
    tls: &Tls,
    timeout: Duration,
) -> Result<StreamOwned<ClientConnection, Socket>, HttpError> {
    let config = client_config(tls)?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| HttpError::Certificate(format!("`{host}` is not a name TLS can check")))?;
    let mut connection = ClientConnection::new(Arc::new(config), name)
        .map_err(|e| HttpError::Certificate(e.to_string()))?;
    while connection.is_handshaking() {
        if let Err(e) = connection.complete_io(&mut socket) {
            return Err(tls_error(e, host, timeout.as_secs()));
        }
    }
    Ok(StreamOwned::new(connection, socket))
}

/// A TLS failure as the user needs it: a certificate problem says what is wrong with it.
fn tls_error(e: io::Error, host: &str, seconds: u64) -> HttpError {
    let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return timed_out(e, seconds);
    };
    match inner {
        rustls::Error::InvalidCertificate(reason) => HttpError::Certificate(format!(
            "the TLS certificate of `{host}` was refused: {}",
            certificate_reason(reason, host)
        )),
        other => HttpError::Certificate(format!("TLS with `{host}` failed: {other}")),
    }
}

fn certificate_reason(reason: &rustls::CertificateError, host: &str) -> String {
    use rustls::CertificateError as C;
    match reason {
        C::UnknownIssuer => "it is not signed by a trusted CA (set `ca_file` to the CA that issued the WinRM listener's certificate)".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => format!("it is not issued for `{host}` (connect by the name in the certificate, or issue one for this name)"),
        C::Expired | C::ExpiredContext { .. } => "it has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet (check both clocks)".into(),
        C::Revoked => "it is revoked".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    /// A one-connection server answering each request with the next canned bytes.
    fn serve(answers: Vec<&'static [u8]>) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(s.try_clone().expect("clone"));
            for answer in answers {
                // read a request head and its Content-Length body
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let _ = s.write_all(answer);
            }
        });
        port
    }

    #[test]
    fn keep_alive_content_length_chunked_and_continue() {
        let port = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Err\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nWWW-Authenticate: Kerberos\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ]);
        let mut c =
            Connection::open("127.0.0.1", port, None, Duration::from_secs(5)).expect("open");
        let t = Duration::from_secs(5);
        let r = c.post("/wsman", &[], b"x", t).expect("first");
        assert_eq!((r.status, r.body.as_slice()), (200, b"hello".as_slice()));
        let r = c.post("/wsman", &[], b"", t).expect("second");
        assert_eq!((r.status, r.body.as_slice()), (500, b"abcde".as_slice()));
        let r = c
            .post("/wsman", &[("Authorization", "Negotiate x".into())], b"", t)
            .expect("third");
        assert_eq!(r.status, 401);
        assert_eq!(
            r.headers_named("www-authenticate").collect::<Vec<_>>(),
            ["Negotiate", "Kerberos"]
        );
        assert!(!c.is_open());
        assert!(matches!(
            c.post("/wsman", &[], b"", t),
            Err(HttpError::Closed(_))
        ));
    }

    #[test]
    fn a_cut_answer_and_a_silent_server_are_told_apart() {
        let port = serve(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"]);
        let mut c =
            Connection::open("127.0.0.1", port, None, Duration::from_secs(5)).expect("open");
        let e = c
            .post("/wsman", &[], b"", Duration::from_secs(5))
            .expect_err("cut");
        assert!(matches!(e, HttpError::Closed(_)), "{e:?}");

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut c =
            Connection::open("127.0.0.1", port, None, Duration::from_secs(5)).expect("open");
        let e = c
            .post("/wsman", &[], b"", Duration::from_millis(200))
            .expect_err("silent");
        assert!(matches!(e, HttpError::Timeout(_)), "{e:?}");
        drop(listener);
    }

    #[test]
    fn a_refused_connection_is_a_connect_error() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let e = Connection::open("127.0.0.1", port, None, Duration::from_secs(2))
            .err()
            .expect("refused");
        assert!(matches!(e, HttpError::Connect { .. }), "{e:?}");
        assert!(e.to_string().contains("127.0.0.1:"), "{e}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").expect("write");
        let e = client_config(&Tls {
            ca_file: Some(path),
        })
        .expect_err("refused");
        assert!(e.to_string().contains("ca.pem"), "{e}");
    }

    /// A server that drips a byte of `100 Continue` heads every 100 ms forever: each read gets a
    /// byte in time, but the exchange as a whole ends at its deadline.
    #[test]
    fn a_dripping_server_is_cut_at_the_deadline_of_the_whole_exchange() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            for byte in b"HTTP/1.1 100 Continue\r\n\r\n".iter().cycle() {
                std::thread::sleep(Duration::from_millis(100));
                if s.write_all(&[*byte]).is_err() {
                    return;
                }
            }
        });
        let mut c =
            Connection::open("127.0.0.1", port, None, Duration::from_secs(5)).expect("open");
        let started = Instant::now();
        let e = c
            .post("/wsman", &[], b"", Duration::from_secs(1))
            .expect_err("cut");
        assert!(matches!(e, HttpError::Timeout(1)), "{e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
}
