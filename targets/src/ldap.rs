//! The Active Directory side of Active Directory-based activation: an LDAP client (SASL
//! `GSSAPI` bind with signing, search, delete; [`connection`]) and what kmsconf reads and
//! deletes with it: the forest's activation objects. Only Windows' licensing service creates an
//! object, so nothing here writes one.

mod ber;
mod connection;
mod message;

use std::time::Duration;

use kmsconf_model::adba::{self, ActivationObject, AdState};
use kmsconf_model::config::AdConfig;

pub use connection::Connection;
pub use message::{Entry, Filter, Scope};

use crate::error::ldap::{LdapError, NO_SUCH_OBJECT};
use crate::Error;

/// A session with the directory of `[active_directory]`: the server, the identity bound as,
/// and the bound connection.
pub struct Directory {
    server: String,
    identity: String,
    credentials: kmsconf_gssapi::Credentials,
}

impl Directory {
    /// Takes the Kerberos credentials `cfg` names (nothing is sent to the server yet).
    pub fn open(cfg: &AdConfig) -> Result<Self, Error> {
        let server = match &cfg.server {
            Some(s) => s.to_string(),
            None => {
                return Err(Error::UnsupportedTarget {
                    target: "[active_directory]".into(),
                    reason: "finding a domain controller from `_ldap._tcp` SRV records is not implemented yet: set `server = \"ldap://dc01.corp.example\"`".into(),
                })
            }
        };
        let wanted = cfg
            .principal
            .clone()
            .unwrap_or_else(|| format!("the principal of {}", kmsconf_gssapi::default_ccache()));
        let fail = |e: kmsconf_gssapi::Error| Error::Ldap {
            server: server.clone(),
            identity: wanted.clone(),
            source: Box::new(LdapError::Gss(e)),
        };
        let gss = kmsconf_gssapi::load().map_err(fail)?;
        let keytab: Option<std::path::PathBuf> =
            cfg.keytab.as_ref().and_then(|k| match &k.source {
                kmsconf_engine::secret::SecretSource::File(path) => Some(path.clone()),
                _ => None,
            });
        let credentials = gss
            .credentials(cfg.principal.as_deref(), keytab.as_deref())
            .map_err(fail)?;
        let identity = credentials.principal().to_string();
        Ok(Self {
            server,
            identity,
            credentials,
        })
    }

    /// `host:port` of the server.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The principal kmsconf binds as.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn error(&self, source: LdapError) -> Error {
        Error::Ldap {
            server: self.server.clone(),
            identity: self.identity.clone(),
            source: Box::new(source),
        }
    }

    /// A bound session with the server; every read of it within `timeout`.
    pub fn bind(&self, timeout: Duration) -> Result<Connection<'_>, Error> {
        let (host, port) = split_server(&self.server);
        let mut c = Connection::connect(host, port, timeout).map_err(|e| self.error(e))?;
        c.bind(&self.credentials, &format!("ldap/{host}"))
            .map_err(|e| self.error(e))?;
        Ok(c)
    }

    /// Reads the schema class, the container and the activation objects in it.
    pub fn read(&self, timeout: Duration) -> Result<AdState, Error> {
        let mut c = self.bind(timeout)?;
        let root = c
            .search(
                "",
                Scope::Base,
                &Filter::Present("objectClass"),
                &["rootDomainNamingContext", "schemaNamingContext"],
            )
            .map_err(|e| self.error(e))?;
        let root = root.first().cloned().unwrap_or_default();
        let (Some(forest_root), Some(schema)) = (
            root.text("rootDomainNamingContext"),
            root.text("schemaNamingContext"),
        ) else {
            return Err(self.error(LdapError::Malformed(
                "the rootDSE names no rootDomainNamingContext or schemaNamingContext",
            )));
        };
        let class = Filter::Equal("lDAPDisplayName", adba::OBJECT_CLASS.to_string());
        let schema_class = !c
            .search(&schema, Scope::OneLevel, &class, &["cn"])
            .map_err(|e| self.error(e))?
            .is_empty();
        let container = adba::container_dn(&forest_root);
        let filter = Filter::Equal("objectClass", adba::OBJECT_CLASS.to_string());
        let found = match c.search(&container, Scope::OneLevel, &filter, &adba::ATTRIBUTES) {
            Ok(entries) => Some(entries),
            Err(e) if e.code() == Some(NO_SUCH_OBJECT) => None,
            Err(e) => return Err(self.error(e)),
        };
        let mut objects: Vec<ActivationObject> =
            found.iter().flatten().map(activation_object).collect();
        objects.sort();
        Ok(AdState {
            server: self.server.clone(),
            identity: self.identity.clone(),
            forest_root,
            schema_class,
            container: found.is_some(),
            objects,
        })
    }

    /// Deletes the activation object at exactly `dn`.
    pub fn delete(&self, dn: &str, timeout: Duration) -> Result<(), Error> {
        let mut c = self.bind(timeout)?;
        c.delete(dn).map_err(|e| self.error(e))
    }
}

fn split_server(server: &str) -> (&str, u16) {
    match server.rsplit_once(':') {
        Some((host, port)) => (
            host.trim_matches(['[', ']']),
            port.parse().unwrap_or(kmsconf_model::config::LDAP_PORT),
        ),
        None => (server, kmsconf_model::config::LDAP_PORT),
    }
}

fn activation_object(e: &Entry) -> ActivationObject {
    let rdn = e.dn.split_once(',').map_or(e.dn.as_str(), |(rdn, _)| rdn);
    let rdn_value = rdn.split_once('=').map_or(rdn, |(_, v)| v).to_string();
    ActivationObject {
        dn: e.dn.clone(),
        name: e.text("cn").unwrap_or(rdn_value),
        sku_id: e
            .bytes("msSPP-CSVLKSkuId")
            .and_then(adba::guid_text)
            .unwrap_or_default(),
        partial_key: e.text("msSPP-CSVLKPartialProductKey").unwrap_or_default(),
        pid: e.text("msSPP-CSVLKPid").unwrap_or_default(),
    }
}
