//! WinRM authentication and message sealing: with a password through the `sspi` crate (NTLM,
//! Kerberos, or Negotiate: SPNEGO, Kerberos when the account's realm has a KDC kmsconf can find,
//! else NTLM; Kerberos reaches the KDC over kmsconf's own TCP socket), or with a Kerberos ticket
//! (the credential cache or a keytab) through MIT GSS-API (`kmsconf-gssapi`), which talks to
//! the KDC itself, in a thread given up at the connect timeout. The context seals every message of the connection it authenticated
//! (MS-WSMV 2.2.9.1).

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kmsconf_engine::secret::Secret;
use sspi::generator::NetworkRequest;
use sspi::network_client::NetworkClient;
use sspi::{
    AuthIdentity, BufferType, ClientRequestFlags, CredentialUse, Credentials, DataRepresentation,
    EncryptionFlags, KerberosConfig, Negotiate, NegotiateConfig, Ntlm, SecurityBuffer,
    SecurityBufferRef, SecurityStatus, Sspi, SspiImpl, Username,
};

use crate::deadline::read_exact_by;

use crate::error::winrm::{service_error, ticket_error};
pub use crate::error::winrm::{AuthError, StartError};

/// Which SSPI package authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Negotiate,
    Ntlm,
    Kerberos,
}

impl From<sspi::Error> for AuthError {
    fn from(e: sspi::Error) -> Self {
        Self(format!("{:?}: {}", e.error_type, e.description))
    }
}

/// What logs on.
pub enum Credential {
    /// `user` (`DOMAIN\user` or `user@domain`) with its password, through sspi.
    Password { user: String, password: Secret },
    /// A Kerberos ticket of `principal` (`None`: the cache's own) from `keytab` or the
    /// credential cache, through MIT GSS-API.
    Ticket {
        principal: Option<String>,
        keytab: Option<PathBuf>,
    },
}

/// One security context: authenticates, then seals and unseals.
pub struct Context {
    inner: Box<dyn Package>,
    done: bool,
    /// Who logs on, for messages: the account, or the ticket's principal.
    account: String,
}

impl Context {
    /// A client context for `credential` towards the host's service principal `service`
    /// (`HTTP/<host>`); `bindings` is the channel bindings' application data over TLS. With a
    /// ticket, the context's first step (MIT GSS-API asking the KDC for the service ticket,
    /// and from a keytab for the credentials first) is taken now, within `limit`.
    pub fn new(
        mechanism: Mechanism,
        credential: &Credential,
        service: &str,
        bindings: Option<&[u8]>,
        limit: Duration,
    ) -> Result<Self, StartError> {
        let (inner, account): (Box<dyn Package>, String) = match credential {
            Credential::Password { user, password } => (
                with_password(mechanism, user, password, (service, bindings))?,
                user.clone(),
            ),
            Credential::Ticket { principal, keytab } => {
                let request = TicketRequest {
                    principal: principal.clone(),
                    keytab: keytab.clone(),
                    service: service.to_string(),
                    bindings: bindings.map(<[u8]>::to_vec),
                };
                let (ticket, account) = request.within(limit)?;
                (Box::new(ticket), account)
            }
        };
        Ok(Self {
            inner,
            done: false,
            account,
        })
    }

    /// Who logs on: the account, or the principal of the ticket.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The next token to send, given the server's last one (`None` at the start).
    pub fn step(&mut self, input: Option<&[u8]>) -> Result<Vec<u8>, AuthError> {
        let (token, done) = self.inner.step(input)?;
        self.done = done;
        Ok(token)
    }

    /// Whether the context is established.
    pub fn is_complete(&self) -> bool {
        self.done
    }

    /// Seals `plain`: the signature header and the sealed bytes.
    pub fn seal(&mut self, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), AuthError> {
        self.inner.seal(plain)
    }

    /// Unseals `sealed` with its signature `header`.
    pub fn unseal(&mut self, header: &[u8], sealed: &[u8]) -> Result<Vec<u8>, AuthError> {
        self.inner.unseal(header, sealed)
    }
}

/// An sspi context logging on as `user` with `password` to `service`, with channel bindings
/// when given.
fn with_password(
    mechanism: Mechanism,
    user: &str,
    password: &Secret,
    (service, bindings): (&str, Option<&[u8]>),
) -> Result<Box<dyn Package>, AuthError> {
    let bindings = bindings.map(sec_channel_bindings);
    let username = Username::parse(user)
        .map_err(|e| AuthError(format!("`{user}` is not an account name: {e}")))?;
    let identity = AuthIdentity {
        username,
        password: password.expose().to_string().into(),
    };
    let target = service.to_string();
    let computer = computer_name();
    Ok(match mechanism {
        Mechanism::Ntlm => {
            let mut sspi = Ntlm::with_config(sspi::ntlm::NtlmConfig::new(computer));
            let handle = acquire(&mut sspi, identity)?;
            Box::new(Package_ {
                sspi,
                handle,
                target,
                bindings: bindings.clone(),
            })
        }
        Mechanism::Negotiate | Mechanism::Kerberos => {
            let kerberos = KerberosConfig {
                kdc_resolution: sspi::KdcResolution::KdcUrl(None),
                client_computer_name: computer.clone(),
            };
            let packages = (mechanism == Mechanism::Kerberos).then(|| "kerberos,!ntlm".into());
            let config = NegotiateConfig::new(Box::new(kerberos), packages, computer);
            let mut sspi = Negotiate::new_client(config)?;
            let handle = acquire(&mut sspi, Credentials::AuthIdentity(identity))?;
            Box::new(Package_ {
                sspi,
                handle,
                target,
                bindings: bindings.clone(),
            })
        }
    })
}

/// What the connection needs of a security package.
trait Package: Send {
    fn step(&mut self, input: Option<&[u8]>) -> Result<(Vec<u8>, bool), AuthError>;
    fn seal(&mut self, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), AuthError>;
    fn unseal(&mut self, header: &[u8], sealed: &[u8]) -> Result<Vec<u8>, AuthError>;
}

#[allow(non_camel_case_types)]
struct Package_<S: SspiImpl> {
    sspi: S,
    handle: S::CredentialsHandle,
    target: String,
    /// `SEC_CHANNEL_BINDINGS` with the application data, over TLS.
    bindings: Option<Vec<u8>>,
}

/// `SEC_CHANNEL_BINDINGS` (as sspi reads it from a `ChannelBindings` buffer) holding only
/// application data: eight little-endian `u32`s (address types, lengths and offsets, the
/// addresses empty), then the data at offset 32.
fn sec_channel_bindings(application: &[u8]) -> Vec<u8> {
    const HEADER: u32 = 32;
    let length = u32::try_from(application.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(HEADER as usize + application.len());
    for field in [0, 0, 0, 0, 0, 0, length, HEADER] {
        out.extend_from_slice(&u32::to_le_bytes(field));
    }
    out.extend_from_slice(application);
    out
}

fn acquire<S>(sspi: &mut S, data: S::AuthenticationData) -> Result<S::CredentialsHandle, AuthError>
where
    S: Sspi + SspiImpl,
{
    let result = sspi
        .acquire_credentials_handle()
        .with_credential_use(CredentialUse::Outbound)
        .with_auth_data(&data)
        .execute(sspi)?;
    Ok(result.credentials_handle)
}

impl<S> Package for Package_<S>
where
    S: Sspi + SspiImpl + Send,
    S::CredentialsHandle: Send,
{
    fn step(&mut self, input: Option<&[u8]>) -> Result<(Vec<u8>, bool), AuthError> {
        // Negotiate wants an input buffer even for its first token: an empty one
        let mut input = vec![SecurityBuffer::new(
            input.map(<[u8]>::to_vec).unwrap_or_default(),
            BufferType::Token,
        )];
        // NTLM puts their hash in its AUTHENTICATE message, Kerberos in its authenticator
        if let Some(bindings) = &self.bindings {
            input.push(SecurityBuffer::new(
                bindings.clone(),
                BufferType::ChannelBindings,
            ));
        }
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let flags = ClientRequestFlags::CONFIDENTIALITY
            | ClientRequestFlags::INTEGRITY
            | ClientRequestFlags::SEQUENCE_DETECT
            | ClientRequestFlags::REPLAY_DETECT
            | ClientRequestFlags::MUTUAL_AUTH
            | ClientRequestFlags::ALLOCATE_MEMORY;
        let mut builder = self
            .sspi
            .initialize_security_context()
            .with_credentials_handle(&mut self.handle)
            .with_context_requirements(flags)
            .with_target_data_representation(DataRepresentation::Native)
            .with_target_name(&self.target)
            .with_input(&mut input)
            .with_output(&mut output);
        let result = self
            .sspi
            .initialize_security_context_impl(&mut builder)?
            .resolve_with_client(&KdcClient)?;
        let done = match result.status {
            SecurityStatus::Ok => true,
            SecurityStatus::CompleteNeeded | SecurityStatus::CompleteAndContinue => {
                self.sspi.complete_auth_token(&mut output)?;
                result.status == SecurityStatus::CompleteNeeded
            }
            _ => false,
        };
        let token = output.pop().map(|b| b.buffer).unwrap_or_default();
        Ok((token, done))
    }

    fn seal(&mut self, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), AuthError> {
        let sizes = self.sspi.query_context_sizes()?;
        let mut token = vec![0u8; sizes.security_trailer as usize];
        let mut data = plain.to_vec();
        let mut buffers = [
            SecurityBufferRef::token_buf(&mut token),
            SecurityBufferRef::data_buf(&mut data),
        ];
        self.sspi
            .encrypt_message(EncryptionFlags::empty(), &mut buffers)?;
        let header = buffers[0].data().to_vec();
        let sealed = buffers[1].data().to_vec();
        Ok((header, sealed))
    }

    fn unseal(&mut self, header: &[u8], sealed: &[u8]) -> Result<Vec<u8>, AuthError> {
        let mut token = header.to_vec();
        let mut data = sealed.to_vec();
        let mut buffers = [
            SecurityBufferRef::token_buf(&mut token),
            SecurityBufferRef::data_buf(&mut data),
        ];
        self.sspi.decrypt_message(&mut buffers)?;
        Ok(buffers[1].data().to_vec())
    }
}

/// What a context from a Kerberos ticket is started with, owned so that it can go to the
/// thread that waits on the KDC.
struct TicketRequest {
    principal: Option<String>,
    keytab: Option<PathBuf>,
    service: String,
    bindings: Option<Vec<u8>>,
}

impl TicketRequest {
    /// The context and its first step, in a thread waited for up to `limit`: MIT GSS-API makes
    /// the KDC requests under its own timeouts (about 25 s for a KDC that drips), which kmsconf
    /// cannot shorten. A thread still waiting then is left to end on its own; it owns its
    /// credentials and context, and what it returns is dropped unread.
    fn within(self, limit: Duration) -> Result<(Ticket, String), StartError> {
        let service = self.service.clone();
        crate::deadline::within("kerberos", limit, move || self.start())
            .map_err(|e| StartError::Refused(AuthError(e.to_string())))?
            .unwrap_or_else(|| {
                Err(StartError::KdcLate {
                    service,
                    seconds: limit.as_secs(),
                })
            })
    }

    /// The credentials, the context and its first step. The step's failure is kept for
    /// [`Package::step`] to give, where the caller knows whose ticket failed.
    fn start(self) -> Result<(Ticket, String), StartError> {
        let lib = kmsconf_gssapi::load().map_err(|e| AuthError(e.to_string()))?;
        let credentials = lib
            .credentials(self.principal.as_deref(), self.keytab.as_deref())
            .map_err(|e| ticket_error(self.principal.as_deref(), self.keytab.as_deref(), &e))?;
        let account = credentials.principal().to_string();
        let mut context = credentials
            .sealing_context(&self.service, self.bindings)
            .map_err(|e| service_error(&self.service, &e))?;
        let first = Ticket::taken(context.step(None), &self.service);
        let ticket = Ticket {
            context,
            service: self.service,
            first: Some(first),
        };
        Ok((ticket, account))
    }
}

/// A context from a Kerberos ticket, through MIT GSS-API.
struct Ticket {
    context: kmsconf_gssapi::SealingContext,
    /// The service principal, for messages.
    service: String,
    /// The first step, taken when the context started, until [`Package::step`] gives it.
    first: Option<Result<(Vec<u8>, bool), AuthError>>,
}

impl Ticket {
    fn taken(
        stepped: Result<kmsconf_gssapi::Step, kmsconf_gssapi::Error>,
        service: &str,
    ) -> Result<(Vec<u8>, bool), AuthError> {
        match stepped {
            Ok(kmsconf_gssapi::Step::Continue(token)) => Ok((token, false)),
            Ok(kmsconf_gssapi::Step::Complete(token)) => Ok((token, true)),
            Err(e) => Err(service_error(service, &e)),
        }
    }
}

impl Package for Ticket {
    fn step(&mut self, input: Option<&[u8]>) -> Result<(Vec<u8>, bool), AuthError> {
        match (input, self.first.take()) {
            (None, Some(first)) => first,
            _ => Self::taken(self.context.step(input), &self.service),
        }
    }

    fn seal(&mut self, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), AuthError> {
        let sealed = self
            .context
            .seal(plain)
            .map_err(|e| AuthError(e.to_string()))?;
        Ok((sealed.header, sealed.data))
    }

    fn unseal(&mut self, header: &[u8], sealed: &[u8]) -> Result<Vec<u8>, AuthError> {
        self.context
            .unseal(header, sealed)
            .map_err(|e| AuthError(e.to_string()))
    }
}

/// How kmsconf names itself to the server (the NTLM workstation): this machine's host name.
fn computer_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "KMSCONF".into())
}

/// Kerberos' KDC exchanges, over TCP (RFC 4120 section 7.2.2: the message already carries its
/// four-byte length).
struct KdcClient;

const KDC_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest KDC reply read.
const KDC_MAX: u32 = 1 << 20;

impl NetworkClient for KdcClient {
    fn send(&self, request: &NetworkRequest) -> sspi::Result<Vec<u8>> {
        let fail = |m: String| sspi::Error::new(sspi::ErrorKind::NoAuthenticatingAuthority, m);
        if request.protocol != sspi::NetworkProtocol::Tcp {
            return Err(fail(format!(
                "kmsconf reaches a KDC over TCP only, not {}",
                request.url
            )));
        }
        let host = request.url.host_str().unwrap_or_default();
        let port = request.url.port().unwrap_or(88);
        let address = (host, port)
            .to_socket_addrs()
            .map_err(|e| fail(format!("KDC {host}:{port}: {e}")))?
            .next()
            .ok_or_else(|| fail(format!("KDC {host} has no address")))?;
        let mut stream = TcpStream::connect_timeout(&address, KDC_TIMEOUT)
            .map_err(|e| fail(format!("KDC {address}: {e}")))?;
        let io = |e: std::io::Error| fail(format!("KDC {address}: {e}"));
        // one deadline for the request and its whole reply
        let deadline = Instant::now() + KDC_TIMEOUT;
        stream.set_write_timeout(Some(KDC_TIMEOUT)).map_err(io)?;
        stream.write_all(&request.data).map_err(io)?;
        let mut length = [0u8; 4];
        read_exact_by(&mut stream, &mut length, deadline).map_err(io)?;
        let n = u32::from_be_bytes(length);
        if n > KDC_MAX {
            return Err(fail(format!("KDC {address} sent a {n}-byte reply")));
        }
        let mut reply = length.to_vec();
        reply.resize(4 + n as usize, 0);
        read_exact_by(&mut stream, &mut reply[4..], deadline).map_err(io)?;
        Ok(reply)
    }
}

#[cfg(test)]
mod tests;
