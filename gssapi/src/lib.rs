//! Kerberos for kmsconf's GSS-TSIG (RFC 3645) and WinRM: initiator credentials from the default
//! credential cache or a keytab, a security context with a DNS server's principal and the MICs
//! that sign and verify messages with it, and (`sealing`) a context with a WinRM host's
//! `HTTP/` principal that seals messages as MS-WSMV requires.
//!
//! MIT's GSS-API library (`libgssapi_krb5.so.2`) is opened at run time (see `ffi`, the one
//! module with `unsafe`), so building needs no Kerberos headers and a machine without Kerberos
//! runs everything else. It is a client only; Windows (SSPI) is not covered.

mod ffi;
mod sasl;
mod sealing;

pub use sasl::KerberosContext;
pub use sealing::{Sealed, SealingContext};

use std::path::Path;
use std::sync::OnceLock;

/// What went wrong, as far as a person acting on it needs to know; `detail` is the library's
/// own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The GSS-API library cannot be loaded.
    Unavailable,
    /// No credential cache, or none with a ticket for the principal asked for.
    NoCredentials,
    /// The ticket in the cache has expired.
    Expired,
    /// This machine's clock and the KDC's (or the server's) differ too much.
    ClockSkew,
    /// The KDC does not know the server principal.
    UnknownServer,
    /// The KDC does not know the client principal (of the keytab).
    UnknownClient,
    /// The keytab has no key for the principal, or its key is not the KDC's.
    BadKeytab,
    /// The KDC cannot be reached.
    KdcUnreachable,
    Other,
}

/// A GSS-API failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail}")]
pub struct Error {
    pub kind: ErrorKind,
    /// The library's words for it (`Server not found in Kerberos database`).
    pub detail: String,
}

/// MIT krb5 error codes (com_err table `krb5`, `src/lib/krb5/error_tables/krb5_err.et`, base
/// -1765328384) that GSS-API passes on as minor statuses, and what each means here.
const KRB5_CODES: &[(i32, ErrorKind)] = &[
    (-1765328378, ErrorKind::UnknownClient), // KDC_ERR_C_PRINCIPAL_UNKNOWN
    (-1765328377, ErrorKind::UnknownServer), // KDC_ERR_S_PRINCIPAL_UNKNOWN
    (-1765328360, ErrorKind::BadKeytab),     // KDC_ERR_PREAUTH_FAILED
    (-1765328352, ErrorKind::Expired),       // KRB_AP_ERR_TKT_EXPIRED
    (-1765328347, ErrorKind::ClockSkew),     // KRB_AP_ERR_SKEW
    (-1765328243, ErrorKind::NoCredentials), // CC_NOTFOUND
    (-1765328230, ErrorKind::KdcUnreachable), // REALM_UNKNOWN ("Cannot find KDC for realm")
    (-1765328228, ErrorKind::KdcUnreachable), // KDC_UNREACH
    (-1765328203, ErrorKind::BadKeytab),     // KT_NOTFOUND
    (-1765328189, ErrorKind::NoCredentials), // FCC_NOFILE
];
/// Major statuses with a meaning of their own: `GSS_S_NO_CRED`, `GSS_S_CREDENTIALS_EXPIRED`.
const NO_CRED: ffi::Status = 7 << 16;
const CREDENTIALS_EXPIRED: ffi::Status = 11 << 16;

fn classify(major: ffi::Status, minor: ffi::Status) -> ErrorKind {
    let code = minor as i32;
    if let Some((_, kind)) = KRB5_CODES.iter().find(|(c, _)| *c == code) {
        return kind.clone();
    }
    match major & 0xffff_0000 {
        NO_CRED => ErrorKind::NoCredentials,
        CREDENTIALS_EXPIRED => ErrorKind::Expired,
        _ => ErrorKind::Other,
    }
}

/// MIT GSS-API, loaded once per process.
pub struct Gssapi {
    lib: ffi::Gss,
}

static LOADED: OnceLock<Result<Gssapi, ffi::LoadError>> = OnceLock::new();

/// Opens `libgssapi_krb5.so.2` (once).
pub fn load() -> Result<&'static Gssapi, Error> {
    LOADED
        .get_or_init(|| ffi::Gss::open().map(|lib| Gssapi { lib }))
        .as_ref()
        .map_err(|e| Error {
            kind: ErrorKind::Unavailable,
            detail: unavailable(&e.to_string(), STATIC_BUILD),
        })
}

/// A statically linked build, as the Linux release binary (musl) is: it has no dynamic loader,
/// so opening a shared library always fails (musl's `dlopen` in a static program is a stub
/// that answers "Dynamic loading not supported").
const STATIC_BUILD: bool = cfg!(all(target_env = "musl", target_feature = "crt-static"));

/// Why the library could not be loaded, and what to do: install it, or, in a static build,
/// where installing changes nothing, use a build that can load it.
fn unavailable(error: &str, static_build: bool) -> String {
    let library = ffi::GSSAPI_LIBRARY;
    if static_build {
        format!("cannot load MIT Kerberos' `{library}` ({error}): this kmsconf is statically linked (the musl release binary) and cannot load a shared library; for Kerberos (GSS-TSIG, LDAP binds, WinRM tickets) use a kmsconf built for this system (`cargo install`)")
    } else {
        format!("cannot load MIT Kerberos' `{library}` ({error}): install it (Debian: `libgssapi-krb5-2`)")
    }
}

/// The name of the default credential cache, as MIT Kerberos resolves it (`KRB5CCNAME`, then
/// krb5.conf), for messages.
pub fn default_ccache() -> String {
    ffi::default_ccache_name().unwrap_or_else(|| "(the default cache)".to_string())
}

impl Gssapi {
    fn error(&self, (major, minor): (ffi::Status, ffi::Status)) -> Error {
        Error {
            kind: classify(major, minor),
            detail: self.lib.describe(major, minor),
        }
    }

    /// Initiator credentials: with a keytab, of `principal` from it (into a cache of this
    /// process's own, leaving the default cache alone); without, from the default credential
    /// cache, of `principal` or of the cache's default principal.
    pub fn credentials(
        &'static self,
        principal: Option<&str>,
        keytab: Option<&Path>,
    ) -> Result<Credentials, Error> {
        let name = principal
            .map(|p| ffi::Name::principal(&self.lib, p))
            .transpose()
            .map_err(|e| self.error(e))?;
        let keytab = keytab.map(|k| k.to_string_lossy().into_owned());
        let cache = own_cache(principal, keytab.as_deref());
        let store: Vec<(&str, &str)> = match &keytab {
            Some(path) => vec![("client_keytab", path), ("ccache", &cache)],
            None => Vec::new(),
        };
        let cred =
            ffi::Cred::acquire(&self.lib, name.as_ref(), &store).map_err(|e| self.error(e))?;
        let (principal, lifetime) = cred.inquire().map_err(|e| self.error(e))?;
        if lifetime == 0 && keytab.is_none() {
            return Err(Error {
                kind: ErrorKind::Expired,
                detail: format!("the ticket of `{principal}` ended"),
            });
        }
        Ok(Credentials {
            gss: self,
            cred,
            principal,
        })
    }
}

/// The memory credential cache of a keytab's credentials: one per principal and keytab, so
/// credentials of another principal (another host's `keytab`) never replace them, and a ticket
/// request given up and finishing late (in a thread left behind) can only store the same
/// principal's ticket from the same keys.
fn own_cache(principal: Option<&str>, keytab: Option<&str>) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    (principal, keytab).hash(&mut hasher);
    format!(
        "MEMORY:kmsconf-{}-{:016x}",
        std::process::id(),
        hasher.finish()
    )
}

/// Initiator credentials, and the principal they are for.
pub struct Credentials {
    gss: &'static Gssapi,
    cred: ffi::Cred<'static>,
    principal: String,
}

impl Credentials {
    /// `user@REALM`.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// Starts a security context with `server` (`DNS/host`, realm optional); it owns the
    /// credentials, so it can move to another thread with them.
    pub fn context(self, server: &str) -> Result<SecurityContext, Error> {
        let target = ffi::Name::principal(&self.gss.lib, server).map_err(|e| self.gss.error(e))?;
        let display = target.display().unwrap_or_else(|| server.to_string());
        Ok(SecurityContext {
            context: ffi::Context::new(&self.gss.lib),
            credentials: self,
            target,
            display,
        })
    }
}

/// What one step of establishing a context gives.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this token; the server's answer is the next step's input.
    Continue(Vec<u8>),
    /// The context is established (a last token, if not empty, still goes to the server).
    Complete(Vec<u8>),
}

/// A security context with one server; deleted when dropped.
pub struct SecurityContext {
    credentials: Credentials,
    context: ffi::Context<'static>,
    target: ffi::Name<'static>,
    display: String,
}

impl SecurityContext {
    /// The server principal, with its realm.
    pub fn server(&self) -> &str {
        &self.display
    }

    /// The client principal.
    pub fn principal(&self) -> &str {
        self.credentials.principal()
    }

    /// One step of establishing the context: `input` is the server's last token (`None` first).
    pub fn step(&mut self, input: Option<&[u8]>) -> Result<Step, Error> {
        let cred = &self.credentials.cred;
        let gss = self.credentials.gss;
        let (major, token) = match self.context.step(cred, &self.target, ffi::SPNEGO, input) {
            Ok(done) => done,
            Err(status) if input.is_none() => return Err(self.diagnose(status)),
            Err(status) => return Err(gss.error(status)),
        };
        Ok(if major & ffi::CONTINUE_NEEDED != 0 {
            Step::Continue(token)
        } else {
            Step::Complete(token)
        })
    }

    /// The error of a failed first step, classified. SPNEGO renumbers the Kerberos error codes
    /// it passes on (MIT's mechglue maps them per mechanism), so the same first step is taken
    /// once more with Kerberos itself, which keeps them; it fails the same way, locally or at
    /// the KDC, before anything reaches the server.
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

    /// The MIC (signature) of `data`.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, Error> {
        self.context
            .get_mic(data)
            .map_err(|e| self.credentials.gss.error(e))
    }

    /// Whether `mic` is this context's MIC of `data`.
    pub fn verify(&self, data: &[u8], mic: &[u8]) -> Result<(), Error> {
        self.context
            .verify_mic(data, mic)
            .map_err(|e| self.credentials.gss.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn krb5_codes_and_major_statuses_classify() {
        assert_eq!(
            classify(13 << 16, -1765328377i32 as u32),
            ErrorKind::UnknownServer
        );
        assert_eq!(classify(NO_CRED, 0), ErrorKind::NoCredentials);
        assert_eq!(classify(CREDENTIALS_EXPIRED, 0), ErrorKind::Expired);
        assert_eq!(classify(13 << 16, 5), ErrorKind::Other);
        // a realm krb5.conf names no KDC for: not "no credentials", whatever the major says
        assert_eq!(
            classify(NO_CRED, -1765328230i32 as u32),
            ErrorKind::KdcUnreachable
        );
    }

    #[test]
    fn a_static_build_says_installing_kerberos_will_not_help() {
        let normal = unavailable("not found", false);
        assert!(
            normal.ends_with("install it (Debian: `libgssapi-krb5-2`)"),
            "{normal}"
        );
        let static_build = unavailable("Dynamic loading not supported", true);
        assert!(
            static_build
                .contains("(Dynamic loading not supported): this kmsconf is statically linked")
                && static_build.contains("`cargo install`")
                && !static_build.contains("install it"),
            "{static_build}"
        );
    }

    #[test]
    fn each_principal_and_keytab_has_a_memory_cache_of_its_own() {
        let a = own_cache(Some("alice@R"), Some("/k/alice"));
        assert_eq!(a, own_cache(Some("alice@R"), Some("/k/alice")));
        assert!(a.starts_with(&format!("MEMORY:kmsconf-{}-", std::process::id())));
        assert_ne!(a, own_cache(Some("bob@R"), Some("/k/alice")));
        assert_ne!(a, own_cache(Some("alice@R"), Some("/k/bob")));
        assert_ne!(a, own_cache(None, Some("/k/alice")));
    }

    /// What a context owns can move to the thread that asks the KDC for its ticket.
    #[test]
    fn contexts_and_credentials_can_move_between_threads() {
        fn sendable<T: Send>() {}
        sendable::<Credentials>();
        sendable::<SecurityContext>();
        sendable::<SealingContext>();
    }
}
