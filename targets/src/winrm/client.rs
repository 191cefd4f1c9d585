//! One WinRM connection: the HTTP connection, its authentication, and the WS-Management calls
//! over it. Over HTTP every body is sealed by the connection's security context
//! (`multipart/encrypted`); kmsconf never sends, and never accepts, a plaintext SOAP body there.
//! Over HTTPS TLS protects the bodies, and the context only authenticates.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use kmsconf_engine::secret::Secret;

use super::auth::{Context, Credential, Mechanism, StartError};
use super::encryption::{self, Protocol};
use super::http::{Connection, HttpError, Response, Tls};
use super::wsman::{self, Endpoint, Expect, ParseError, Reply};
use super::{AuthMethod, WinRmOptions};
use crate::error::winrm::Refusal;
use crate::process::Broken;

/// The path of the WS-Management service.
const PATH: &str = "/wsman";
/// How much longer than its OperationTimeout a call may take before the connection is given up.
const GRACE: Duration = Duration::from_secs(30);
/// Authentication rounds before kmsconf gives up (NTLM needs 2, Kerberos 1, SPNEGO up to 3).
const MAX_ROUNDS: usize = 6;

/// A request's own headers.
type Headers = Vec<(&'static str, String)>;

/// How requests are authenticated once the connection is.
enum Authn {
    /// HTTP: every body sealed by the context.
    Sealed(Box<Context>, Protocol),
    /// HTTPS: the connection is authenticated, TLS protects the bodies.
    Tls,
    /// HTTPS with Basic: the header on every request.
    Basic(Secret),
}

/// An authenticated connection to one host's WinRM service.
pub struct Client {
    connection: Connection,
    authn: Authn,
    pub endpoint: Endpoint,
    /// `user` at `host:port`, for messages.
    who: String,
}

/// A WS-Management call that did not give its reply.
#[derive(Debug)]
pub enum CallError {
    /// The host answered a WS-Management fault.
    Fault(wsman::Fault),
    /// The connection or its authentication broke.
    Broken(Broken),
}

impl Client {
    /// Connects and authenticates; the errors are those of the connection (unreachable,
    /// certificate, credentials refused, timeout).
    pub fn connect(
        options: &WinRmOptions,
        credential: Credential,
        timeout: Duration,
    ) -> Result<Self, Broken> {
        let tls = options.https.then(|| Tls {
            ca_file: options.ca_file.clone(),
        });
        let connection = Connection::open(&options.host, options.port, tls.as_ref(), timeout)
            .map_err(|e| broken(e, "connecting"))?;
        let scheme = if options.https { "https" } else { "http" };
        let mut endpoint = Endpoint::new(format!(
            "{scheme}://{}{PATH}",
            super::http::authority(&options.host, options.port)
        ));
        endpoint.operation_timeout = options.operation_timeout;
        let mut client = Self {
            connection,
            authn: Authn::Tls,
            endpoint,
            who: format!(
                "`{}` at {}",
                options.user,
                super::http::authority(&options.host, options.port)
            ),
        };
        client.authn = match (options.auth, &credential) {
            (AuthMethod::Basic, Credential::Password { password, .. }) => Authn::Basic(
                Secret::new(BASE64.encode(format!("{}:{}", options.user, password.expose()))),
            ),
            (AuthMethod::Basic, Credential::Ticket { .. }) => {
                return Err(Broken::Auth(format!(
                    "{}: Basic authentication needs a password",
                    client.who
                )))
            }
            (method, _) => {
                let mechanism = match method {
                    AuthMethod::Ntlm => Mechanism::Ntlm,
                    AuthMethod::Kerberos => Mechanism::Kerberos,
                    _ => Mechanism::Negotiate,
                };
                // over HTTPS the authentication is bound to this TLS connection (RFC 5929)
                let bindings = client
                    .connection
                    .server_certificate()
                    .map(|der| super::binding::tls_server_end_point(&der));
                if let Credential::Ticket { principal, .. } = &credential {
                    // a ticket's failures name who it is for, not the target's account
                    let who = principal.as_deref().map_or_else(
                        || "the credential cache's principal".to_string(),
                        |p| format!("`{p}`"),
                    );
                    client.who = format!(
                        "{who} (Kerberos ticket) at {}",
                        super::http::authority(&options.host, options.port)
                    );
                }
                let context = Context::new(
                    mechanism,
                    &credential,
                    &options.service_principal,
                    bindings.as_deref(),
                    timeout,
                )
                .map_err(|e| match e {
                    StartError::Refused(e) => Broken::Auth(format!("{}: {e}", client.who)),
                    StartError::KdcLate { service, seconds } => Broken::Timeout {
                        seconds,
                        during: format!(
                            "from the Kerberos KDC for a ticket to `{service}` for {}: the KDC that krb5.conf names for the realm does not answer, or answers too slowly",
                            client.who
                        ),
                    },
                })?;
                if let Credential::Ticket { .. } = credential {
                    client.who = format!(
                        "`{}` (Kerberos ticket) at {}",
                        context.account(),
                        super::http::authority(&options.host, options.port)
                    );
                }
                let context = client.authenticate(context, timeout)?;
                if options.https {
                    Authn::Tls
                } else {
                    // kmsconf's tokens are SPNEGO for every method but raw NTLM, which Windows
                    // also takes under `Negotiate`: the SPNEGO session encryption either way
                    Authn::Sealed(Box::new(context), Protocol::Spnego)
                }
            }
        };
        Ok(client)
    }

    /// The SPNEGO/NTLM/Kerberos exchange over empty POSTs, as WinRM clients do before the first
    /// sealed message.
    fn authenticate(&mut self, mut context: Context, timeout: Duration) -> Result<Context, Broken> {
        let mut token = context
            .step(None)
            .map_err(|e| Broken::Auth(format!("{}: {e}", self.who)))?;
        for round in 1..=MAX_ROUNDS {
            let header = format!("Negotiate {}", BASE64.encode(&token));
            let response =
                self.post(&[("Authorization", header)], b"", timeout, "authenticating")?;
            let offered = negotiate_token(&response);
            match response.status {
                200 => return self.accepted(context, offered, round),
                401 => match offered {
                    Some(challenge) if !context.is_complete() => {
                        token = context
                            .step(Some(&challenge))
                            .map_err(|e| Broken::Auth(format!("{}: {e}", self.who)))?;
                    }
                    _ => return Err(Broken::Auth(format!(
                        "{} was refused (HTTP 401): {}, an unknown or locked account, or an account that may not use WinRM (it must be a member of the host's Administrators group, or be granted by the WinRM SDDL)",
                        self.who,
                        if self.who.contains("(Kerberos ticket)") { "a ticket for another service principal than the host's" } else { "a wrong password" }
                    ))),
                },
                status => return Err(status_error(&response, status, "while authenticating")),
            }
        }
        Err(Broken::Auth(format!(
            "{}: the authentication did not finish in {MAX_ROUNDS} rounds",
            self.who
        )))
    }

    /// The host answered `200` to authentication round `round`: with its final token, the
    /// context must now be established. A `200` before that (a proxy or a fake endpoint answering
    /// in the host's place) authenticated nothing and is said to be so, rather than failing later
    /// when the first message cannot be sealed.
    fn accepted(
        &self,
        mut context: Context,
        offered: Option<Vec<u8>>,
        round: usize,
    ) -> Result<Context, Broken> {
        let early = || {
            format!(
                "{} answered HTTP 200 to authentication round {round} before the authentication was complete, so the host did not prove who it is and no message could be sealed: is something other than WinRM answering on this port",
                self.who
            )
        };
        if let (Some(last), false) = (offered, context.is_complete()) {
            context
                .step(Some(&last))
                .map_err(|e| Broken::Auth(format!("{} ({e})", early())))?;
        }
        if !context.is_complete() {
            return Err(Broken::Auth(early()));
        }
        Ok(context)
    }

    fn post(
        &mut self,
        headers: &[(&str, String)],
        body: &[u8],
        timeout: Duration,
        during: &str,
    ) -> Result<Response, Broken> {
        self.connection
            .post(PATH, headers, body, timeout)
            .map_err(|e| broken(e, during))
    }

    /// Sends one WS-Management message and returns the reply's XML (a fault included).
    fn exchange(&mut self, xml: &str, timeout: Duration, during: &str) -> Result<String, Broken> {
        let (headers, body) = self.wrap(xml)?;
        let response = self.post(&headers, &body, timeout, during)?;
        match response.status {
            200 | 400 | 500 => {}
            401 => {
                return Err(Broken::Auth(format!(
                    "{}: the host stopped accepting the connection's authentication (HTTP 401)",
                    self.who
                )))
            }
            status => return Err(status_error(&response, status, during)),
        }
        if response.body.is_empty() {
            return Err(status_error(&response, response.status, during));
        }
        self.unwrap(&response)
    }

    /// The headers and body of a message: sealed over HTTP.
    fn wrap(&mut self, xml: &str) -> Result<(Headers, Vec<u8>), Broken> {
        let plain = (
            "Content-Type",
            "application/soap+xml;charset=UTF-8".to_string(),
        );
        match &mut self.authn {
            Authn::Tls => Ok((vec![plain], xml.as_bytes().to_vec())),
            Authn::Basic(credentials) => Ok((
                vec![
                    plain,
                    ("Authorization", format!("Basic {}", credentials.expose())),
                ],
                xml.as_bytes().to_vec(),
            )),
            Authn::Sealed(context, protocol) => {
                let (header, sealed) = context
                    .seal(xml.as_bytes())
                    .map_err(|e| Broken::Dropped(format!("cannot seal a message: {e}")))?;
                // the sealed envelope with the cipher's padding, if any (none with NTLM or AES)
                let body = encryption::frame(*protocol, sealed.len(), &header, &sealed);
                Ok((
                    vec![("Content-Type", encryption::content_type(*protocol))],
                    body,
                ))
            }
        }
    }

    /// The XML of a response: unsealed over HTTP, where a plaintext body is refused.
    fn unwrap(&mut self, response: &Response) -> Result<String, Broken> {
        let content_type = response.header("Content-Type").unwrap_or("");
        let bytes = match &mut self.authn {
            Authn::Sealed(context, _) => {
                if !content_type
                    .to_ascii_lowercase()
                    .starts_with("multipart/encrypted")
                {
                    return Err(Broken::Refused(Refusal::Unsealed {
                        status: response.status,
                        content_type: content_type.to_string(),
                        who: self.who.clone(),
                    }));
                }
                let framed = encryption::unframe(content_type, &response.body)
                    .map_err(|e| Broken::Refused(Refusal::Frame(e)))?;
                let plain = context
                    .unseal(framed.header, framed.sealed)
                    .map_err(|e| Broken::Refused(Refusal::Integrity(e)))?;
                if plain.len() != framed.plain_len {
                    return Err(Broken::Refused(Refusal::Length {
                        found: plain.len(),
                        said: framed.plain_len,
                    }));
                }
                plain
            }
            _ => response.body.clone(),
        };
        String::from_utf8(bytes).map_err(|_| Broken::Refused(Refusal::NotUtf8))
    }

    /// Sends `xml` and parses its reply as `expect`. `operation` is the call's OperationTimeout.
    pub fn call(
        &mut self,
        expect: Expect,
        xml: &str,
        message_id: &str,
        operation: Duration,
        during: &str,
    ) -> Result<Reply, CallError> {
        let answer = self
            .exchange(xml, operation + GRACE, during)
            .map_err(CallError::Broken)?;
        wsman::parse(expect, &answer, message_id).map_err(|e| match e {
            ParseError::Fault(fault) => CallError::Fault(fault),
            source => CallError::Broken(Broken::Refused(Refusal::Unreadable {
                during: during.to_string(),
                source,
            })),
        })
    }

    /// The endpoint with another OperationTimeout (a Receive cut to the run's deadline).
    pub fn endpoint_until(&self, deadline: Instant) -> Endpoint {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut endpoint = self.endpoint.clone();
        endpoint.operation_timeout = endpoint
            .operation_timeout
            .min(left)
            .max(Duration::from_secs(1));
        endpoint
    }

    /// Whether the connection can carry another call.
    pub fn is_open(&self) -> bool {
        self.connection.is_open()
    }
}

/// The token of the `WWW-Authenticate: Negotiate <token>` header, if any.
fn negotiate_token(response: &Response) -> Option<Vec<u8>> {
    response.headers_named("WWW-Authenticate").find_map(|v| {
        let (scheme, token) = v.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("Negotiate") && !scheme.eq_ignore_ascii_case("Kerberos") {
            return None;
        }
        BASE64.decode(token.trim()).ok()
    })
}

/// An HTTP status kmsconf does not expect, with what the host said.
fn status_error(response: &Response, status: u16, during: &str) -> Broken {
    let text: String = String::from_utf8_lossy(&response.body)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    Broken::Refused(Refusal::Status {
        status,
        during: during.to_string(),
        detail: text.trim().to_string(),
    })
}

/// A connection error as the session reports it.
fn broken(e: HttpError, during: &str) -> Broken {
    match e {
        HttpError::Connect { address, source } => {
            Broken::Unreachable(format!("cannot connect to {address}: {source} (is WinRM listening there? `winrm quickconfig` on the host, and its firewall)"))
        }
        HttpError::Certificate(m) | HttpError::CaFile { message: m, .. } => Broken::Certificate(m),
        HttpError::Timeout(seconds) => Broken::Timeout {
            seconds,
            during: during.to_string(),
        },
        other => Broken::Dropped(format!("{other} ({during})")),
    }
}
