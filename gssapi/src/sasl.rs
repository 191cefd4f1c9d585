//! A Kerberos V5 security context for SASL's `GSSAPI` mechanism (RFC 4752), as LDAP binds with
//! it: the context is established with the Kerberos mechanism itself (not SPNEGO), and once it
//! is, messages are wrapped and unwrapped for the integrity-protected security layer.

use std::sync::OnceLock;

use crate::{ffi, Credentials, Error, ErrorKind, Step};

/// `gss_wrap` and `gss_unwrap`, or why they cannot be loaded (the library's error, kept for the
/// life of the process as `crate::load` keeps its own).
static WRAPPING: OnceLock<Result<ffi::Wrapping, ffi::LoadError>> = OnceLock::new();

/// A Kerberos security context with one server, for SASL `GSSAPI`; deleted when dropped.
pub struct KerberosContext<'c> {
    credentials: &'c Credentials,
    context: ffi::Context<'static>,
    target: ffi::Name<'static>,
    display: String,
    wrapping: &'static ffi::Wrapping,
}

impl Credentials {
    /// Starts a Kerberos (not SPNEGO) context with `server` (`ldap/dc1.corp.example`).
    pub fn kerberos_context(&self, server: &str) -> Result<KerberosContext<'_>, Error> {
        let wrapping = WRAPPING
            .get_or_init(ffi::Wrapping::open)
            .as_ref()
            .map_err(|e| Error {
                kind: ErrorKind::Unavailable,
                detail: e.to_string(),
            })?;
        let target = ffi::Name::principal(&self.gss.lib, server).map_err(|e| self.gss.error(e))?;
        let display = target.display().unwrap_or_else(|| server.to_string());
        Ok(KerberosContext {
            credentials: self,
            context: ffi::Context::new(&self.gss.lib),
            target,
            display,
            wrapping,
        })
    }
}

impl KerberosContext<'_> {
    /// The server principal, with its realm.
    pub fn server(&self) -> &str {
        &self.display
    }

    /// One step of establishing the context: `input` is the server's last token (`None` first).
    pub fn step(&mut self, input: Option<&[u8]>) -> Result<Step, Error> {
        let gss = self.credentials.gss;
        let (major, token) = self
            .context
            .step(&self.credentials.cred, &self.target, ffi::KRB5, input)
            .map_err(|e| gss.error(e))?;
        Ok(if major & ffi::CONTINUE_NEEDED != 0 {
            Step::Continue(token)
        } else {
            Step::Complete(token)
        })
    }

    /// `data` wrapped with integrity protection (signed, not sealed).
    pub fn wrap(&self, data: &[u8]) -> Result<Vec<u8>, Error> {
        self.context
            .wrap(self.wrapping, data)
            .map_err(|e| self.credentials.gss.error(e))
    }

    /// The message in `token`, whose signature must check out.
    pub fn unwrap(&self, token: &[u8]) -> Result<Vec<u8>, Error> {
        self.context
            .unwrap(self.wrapping, token)
            .map_err(|e| self.credentials.gss.error(e))
    }
}
