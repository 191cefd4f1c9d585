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

/// Where and as whom kmsconf binds: the server (`host:port`), the principal (`None`: the
/// default credential cache's) and a keytab GSS-API reads.
#[derive(Debug, Clone)]
pub struct Bind {
    pub server: String,
    pub principal: Option<String>,
    pub keytab: Option<std::path::PathBuf>,
}

impl Bind {
    /// The bind `[active_directory]` declares.
    pub fn of(cfg: &AdConfig) -> Result<Self, Error> {
        let Some(server) = &cfg.server else {
            return Err(Error::UnsupportedTarget {
                target: "[active_directory]".into(),
                reason: "finding a domain controller from `_ldap._tcp` SRV records is not implemented yet: set `server = \"ldap://dc01.corp.example\"`".into(),
            });
        };
        let keytab = cfg.keytab.as_ref().and_then(|k| match &k.source {
            kmsconf_engine::secret::SecretSource::File(path) => Some(path.clone()),
            _ => None,
        });
        Ok(Self {
            server: server.to_string(),
            principal: cfg.principal.clone(),
            keytab,
        })
    }
}

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
        Self::new(&Bind::of(cfg)?)
    }

    /// Takes the Kerberos credentials of `bind` (nothing is sent to the server yet).
    pub fn new(bind: &Bind) -> Result<Self, Error> {
        let server = bind.server.clone();
        let wanted = bind
            .principal
            .clone()
            .unwrap_or_else(|| format!("the principal of {}", kmsconf_gssapi::default_ccache()));
        let fail = |e: kmsconf_gssapi::Error| Error::Ldap {
            server: server.clone(),
            identity: wanted.clone(),
            source: Box::new(LdapError::Gss(e)),
        };
        let gss = kmsconf_gssapi::load().map_err(fail)?;
        let credentials = gss
            .credentials(bind.principal.as_deref(), bind.keytab.as_deref())
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

/// The directory as a plan entry: discovery reads the activation objects, and apply deletes
/// the ones planned to go, each by its exact DN. Its apply lock is a no-op (a deletion of an
/// object that is already gone fails with `noSuchObject`, naming it).
pub struct AdTarget {
    bind: Bind,
    timeout: Duration,
}

impl AdTarget {
    pub fn new(bind: Bind, timeout: Duration) -> Self {
        Self { bind, timeout }
    }
}

impl kmsconf_engine::target::Target for AdTarget {
    type State = kmsconf_model::EntryState;
    type Operation = kmsconf_model::ops::EntryOp;
    type Error = Error;

    fn discover(&self) -> Result<kmsconf_engine::target::Discovery<Self::State>, Error> {
        let state = Directory::new(&self.bind)?.read(self.timeout)?;
        Ok(kmsconf_engine::target::Discovery {
            state: kmsconf_model::EntryState::ActiveDirectory(state),
            created: false,
        })
    }

    fn execute(
        &self,
        batch: &[Self::Operation],
    ) -> Result<Vec<kmsconf_engine::target::ChangeStatus>, Error> {
        use kmsconf_engine::target::ChangeStatus;
        use kmsconf_model::ops::EntryOp;
        let directory = Directory::new(&self.bind)?;
        Ok(batch
            .iter()
            .map(|op| match op {
                EntryOp::DeleteActivationObject { dn } => {
                    match directory.delete(dn, self.timeout) {
                        Ok(()) => ChangeStatus::Applied {
                            detail: Some(format!("deleted `{dn}`")),
                        },
                        Err(e) => ChangeStatus::Failed {
                            code: None,
                            message: e.to_string(),
                        },
                    }
                }
                EntryOp::Host(_) | EntryOp::Srv(_) => ChangeStatus::Failed {
                    code: None,
                    message: format!(
                        "LDAP server `{}`: a KMS host or DNS operation was sent to the directory",
                        self.bind.server
                    ),
                },
            })
            .collect())
    }

    fn lock(
        &self,
        _holder: &kmsconf_engine::lock::LockHolder,
    ) -> Result<kmsconf_engine::lock::LockGuard, Error> {
        Ok(kmsconf_engine::lock::LockGuard::new(()))
    }

    fn force_unlock(&self, _lock_id: &str) -> Result<kmsconf_engine::lock::LockHolder, Error> {
        Err(Error::UnsupportedTarget {
            target: format!("ldap://{}", self.bind.server),
            reason: "the directory has no apply lock to break".into(),
        })
    }
}
