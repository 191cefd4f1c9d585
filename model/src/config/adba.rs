//! The validated `[active_directory]` table: the directory, the bind credentials and the
//! declared activation objects.

use std::fmt;

use kmsconf_engine::diagnostic::Location;
use kmsconf_engine::secret::DeclaredSecret;

pub use super::wire::AdActivation;

/// The LDAP port of a domain controller (RFC 4511's registered port).
pub const LDAP_PORT: u16 = 389;

/// Active Directory-based activation, as declared.
#[derive(Debug, Clone)]
pub struct AdConfig {
    /// `None`: found from the `_ldap._tcp.dc._msdcs` SRV records of the bind principal's realm.
    pub server: Option<LdapServer>,
    /// `None`: the default credential cache's principal.
    pub principal: Option<String>,
    /// Always a `{ file = ... }` reference: GSS-API reads it, kmsconf never does.
    pub keytab: Option<DeclaredSecret>,
    pub exclusive: bool,
    pub objects: Vec<AdObjectConfig>,
}

/// A domain controller's LDAP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapServer {
    /// Lowercase DNS name (its Kerberos service principal is `ldap/<host>`) or IP address.
    pub host: String,
    pub port: u16,
}

impl fmt::Display for LdapServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// One declared activation object.
#[derive(Debug, Clone)]
pub struct AdObjectConfig {
    pub name: String,
    pub host_key: DeclaredSecret,
    /// The declared host whose licensing service creates it.
    pub via: String,
    pub activation: AdActivation,
    pub confirmation_id: Option<DeclaredSecret>,
    pub declared_at: Location,
}
