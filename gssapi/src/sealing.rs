//! A security context that seals messages, as WinRM over HTTP needs (MS-WSMV 2.2.9.1): it owns
//! its credentials so a connection can keep it, asks for confidentiality and mutual
//! authentication, carries channel bindings when the caller has them (RFC 5929, over TLS), and
//! seals with `gss_wrap_iov` as pywinrm and pypsrp do through pyspnego's `wrap_winrm`.

use crate::{classify, ffi, Credentials, Error, ErrorKind, Step};

/// What seals one message: the wrap token header, the sealed bytes (with the cipher's padding
/// after them; none with AES) and that padding's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub header: Vec<u8>,
    pub data: Vec<u8>,
    pub padding: usize,
}

/// An initiator context with one server that can seal and unseal; deleted when dropped.
pub struct SealingContext {
    credentials: Credentials,
    context: ffi::Context<'static>,
    target: ffi::Name<'static>,
    display: String,
    bindings: Option<Vec<u8>>,
    complete: bool,
}

impl Credentials {
    /// Starts a context with `server` (`HTTP/host`, realm optional) inside SPNEGO, as the HTTP
    /// `Negotiate` scheme carries it. `bindings` is the channel bindings' application data
    /// (`tls-server-end-point:` and the certificate's hash), or `None` without TLS.
    pub fn sealing_context(
        self,
        server: &str,
        bindings: Option<Vec<u8>>,
    ) -> Result<SealingContext, Error> {
        let gss = self.gss;
        let target = ffi::Name::principal(&gss.lib, server).map_err(|e| gss.error(e))?;
        let display = target.display().unwrap_or_else(|| server.to_string());
        Ok(SealingContext {
            context: ffi::Context::new(&gss.lib),
            credentials: self,
            target,
            display,
            bindings,
            complete: false,
        })
    }
}

impl SealingContext {
    /// The client principal.
    pub fn principal(&self) -> &str {
        self.credentials.principal()
    }

    /// The server principal, with its realm.
    pub fn server(&self) -> &str {
        &self.display
    }

    /// One step of establishing the context: `input` is the server's last token (`None` first).
    /// The context is complete only once the server has proven itself (mutual authentication)
    /// and it can seal.
    pub fn step(&mut self, input: Option<&[u8]>) -> Result<Step, Error> {
        let gss = self.credentials.gss;
        let request = (ffi::WINRM_FLAGS, self.bindings.as_deref());
        let stepped = self.context.step_with(
            &self.credentials.cred,
            &self.target,
            ffi::SPNEGO,
            input,
            request,
        );
        let (major, token, granted) = match stepped {
            Ok(done) => done,
            Err(status) if input.is_none() => return Err(self.diagnose(status)),
            Err(status) => return Err(gss.error(status)),
        };
        if major & ffi::CONTINUE_NEEDED != 0 {
            return Ok(Step::Continue(token));
        }
        if granted & ffi::SEALING_FLAGS != ffi::SEALING_FLAGS {
            return Err(Error {
                kind: ErrorKind::Other,
                detail: format!(
                    "the context with `{}` cannot seal messages (it was granted flags {granted:#x})",
                    self.display
                ),
            });
        }
        self.complete = true;
        Ok(Step::Complete(token))
    }

    /// Whether the context is established.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The first step's failure, classified with Kerberos' own error codes (see
    /// `SecurityContext::diagnose`).
    fn diagnose(&self, status: (ffi::Status, ffi::Status)) -> Error {
        let gss = self.credentials.gss;
        let mut error = gss.error(status);
        let mut probe = ffi::Context::new(&gss.lib);
        if let Err((major, minor)) =
            probe.step(&self.credentials.cred, &self.target, ffi::KRB5, None)
        {
            error.kind = classify(major, minor);
        }
        error
    }

    /// Seals `plain` (MS-WSMV 2.2.9.1.1: the header goes before the sealed bytes in the body).
    pub fn seal(&self, plain: &[u8]) -> Result<Sealed, Error> {
        let mut data = plain.to_vec();
        let (header, padding) = self
            .context
            .wrap_iov(&mut data)
            .map_err(|e| self.iov_error(e))?;
        let padded = padding.len();
        data.extend_from_slice(&padding);
        Ok(Sealed {
            header,
            data,
            padding: padded,
        })
    }

    /// Unseals `sealed` with its `header`: the plaintext, or an error when it was changed,
    /// replayed or is not from this context's peer.
    pub fn unseal(&self, header: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Error> {
        let mut data = sealed.to_vec();
        self.context
            .unwrap_iov(header, &mut data)
            .map_err(|e| self.iov_error(e))?;
        Ok(data)
    }

    fn iov_error(&self, e: ffi::IovError) -> Error {
        match e {
            ffi::IovError::Status(major, minor) => self.credentials.gss.error((major, minor)),
            what => Error {
                kind: ErrorKind::Other,
                detail: format!("`{}`: {what}", ffi::GSSAPI_LIBRARY),
            },
        }
    }
}
