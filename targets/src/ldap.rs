//! The Active Directory side of Active Directory-based activation: an LDAP client (SASL
//! `GSSAPI` bind with signing, search, delete; [`connection`]) and what kmsconf reads and
//! deletes with it: the forest's activation objects. Only Windows' licensing service creates an
//! object, so nothing here writes one.

mod ber;
mod connection;
pub mod locate;
mod message;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kmsconf_model::adba::{self, ActivationObject, AdState};
use kmsconf_model::config::AdConfig;

pub use connection::Connection;
pub use message::{Entry, Filter, Scope};

use crate::error::ldap::{Attempt, LdapError, LocateError, NO_SUCH_OBJECT};
use crate::Error;
use locate::Candidate;

/// Where and as whom kmsconf binds: the server (`host:port`; `None`: a domain controller found
/// from DNS SRV records, asked of `dns` or the system's DNS server), the principal (`None`: the
/// default credential cache's) and a keytab GSS-API reads.
#[derive(Debug, Clone)]
pub struct Bind {
    pub server: Option<String>,
    pub dns: Option<String>,
    pub principal: Option<String>,
    pub keytab: Option<std::path::PathBuf>,
}

impl Bind {
    /// The bind `[active_directory]` declares; `dns` is `[dns] server`, where the config has one.
    pub fn of(cfg: &AdConfig, dns: Option<&str>) -> Self {
        let keytab = cfg.keytab.as_ref().and_then(|k| match &k.source {
            kmsconf_engine::secret::SecretSource::File(path) => Some(path.clone()),
            _ => None,
        });
        Self {
            server: cfg.server.as_ref().map(ToString::to_string),
            dns: dns.map(str::to_string),
            principal: cfg.principal.clone(),
            keytab,
        }
    }

    /// The server as messages name it before one is found.
    fn shown(&self) -> String {
        self.server
            .clone()
            .unwrap_or_else(|| "(a domain controller from DNS)".to_string())
    }
}

/// A session with the directory of `[active_directory]`: the domain controllers to try (the
/// declared server, or those DNS named), the identity bound as, and its credentials.
pub struct Directory {
    servers: Servers,
    identity: String,
    credentials: kmsconf_gssapi::Credentials,
}

/// Where a [`Directory`] binds: the declared server, or the domain controllers DNS names for
/// the principal's domain, looked up at the first bind, within its deadline, and kept.
enum Servers {
    Declared(Candidate),
    Located {
        dns: Option<String>,
        found: OnceLock<locate::Located>,
    },
}

impl Directory {
    /// Takes the Kerberos credentials `cfg` names; when it names no server, the first bind
    /// finds the domain controllers in DNS (`dns`: `[dns] server`). Nothing is sent yet.
    pub fn open(cfg: &AdConfig, dns: Option<&str>) -> Result<Self, Error> {
        Self::new(&Bind::of(cfg, dns))
    }

    /// Takes the Kerberos credentials of `bind`; without a server, the first bind finds the
    /// domain controllers in DNS. Nothing is sent yet.
    pub fn new(bind: &Bind) -> Result<Self, Error> {
        let wanted = bind
            .principal
            .clone()
            .unwrap_or_else(|| format!("the principal of {}", kmsconf_gssapi::default_ccache()));
        let fail = |e: kmsconf_gssapi::Error| Error::Ldap {
            server: bind.shown(),
            identity: wanted.clone(),
            source: Box::new(LdapError::Gss(e)),
        };
        let gss = kmsconf_gssapi::load().map_err(fail)?;
        let credentials = gss
            .credentials(bind.principal.as_deref(), bind.keytab.as_deref())
            .map_err(fail)?;
        let identity = credentials.principal().to_string();
        let servers = match &bind.server {
            Some(server) => {
                let (host, port) = split_server(server);
                Servers::Declared(Candidate {
                    host: host.to_string(),
                    port,
                    addresses: Vec::new(),
                })
            }
            None => Servers::Located {
                dns: bind.dns.clone(),
                found: OnceLock::new(),
            },
        };
        Ok(Self {
            servers,
            identity,
            credentials,
        })
    }

    /// The principal kmsconf binds as.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn error(&self, server: &str, source: LdapError) -> Error {
        Error::Ldap {
            server: server.to_string(),
            identity: self.identity.clone(),
            source: Box::new(source),
        }
    }

    /// A bound session, and the `host:port` of the server it is with; every read of it within
    /// `timeout`. Domain controllers found in DNS are tried in order until one connects and
    /// binds; the DNS lookups (at the first bind), the connects and the binds all end within
    /// `timeout`. Each failure is logged, and all of them are the error.
    pub fn bind(&self, timeout: Duration) -> Result<(Connection<'_>, String), Error> {
        let deadline = Instant::now() + timeout;
        let found = match &self.servers {
            Servers::Declared(dc) => {
                return self
                    .bind_one(dc, deadline, timeout)
                    .map(|c| (c, dc.server()))
                    .map_err(|e| self.error(&dc.server(), e))
            }
            Servers::Located { dns, found } => match found.get() {
                Some(found) => found,
                None => {
                    let located = locate::locate(&self.identity, dns.as_deref(), deadline)
                        .map_err(|e| Error::Locate {
                            identity: self.identity.clone(),
                            source: Box::new(e),
                        })?;
                    found.get_or_init(|| located)
                }
            },
        };
        let all = &found.candidates;
        let mut tried = Vec::new();
        for (i, dc) in all.iter().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            // a DC that does not answer gets its share of the time left, not all of it
            let share = left / u32::try_from(all.len() - i).unwrap_or(1);
            match self.bind_one(dc, deadline, share) {
                Ok(c) => return Ok((c, dc.server())),
                Err(error) => {
                    tracing::debug!(server = %dc.server(), %error, "domain controller failed; trying the next one");
                    tried.push(Attempt {
                        server: dc.server(),
                        error,
                    });
                }
            }
        }
        let untried = all.len() - tried.len();
        Err(Error::Locate {
            identity: self.identity.clone(),
            source: Box::new(LocateError::NoneBound {
                name: found.location.srv_name.clone(),
                dns: found.location.dns_server.clone(),
                tried,
                untried,
            }),
        })
    }

    /// Connects to `dc` and binds to `ldap/<its name>`.
    fn bind_one(
        &self,
        dc: &Candidate,
        deadline: Instant,
        connect_within: Duration,
    ) -> Result<Connection<'_>, LdapError> {
        let mut c = Connection::open(&dc.host, dc.port, &dc.addresses, deadline, connect_within)?;
        c.bind(&self.credentials, &format!("ldap/{}", dc.host))?;
        Ok(c)
    }

    /// Reads the schema class, the container and the activation objects in it.
    pub fn read(&self, timeout: Duration) -> Result<AdState, Error> {
        let (mut c, server) = self.bind(timeout)?;
        let fail = |e| self.error(&server, e);
        let root = c
            .search(
                "",
                Scope::Base,
                &Filter::Present("objectClass"),
                &["rootDomainNamingContext", "schemaNamingContext"],
            )
            .map_err(fail)?;
        let root = root.first().cloned().unwrap_or_default();
        let (Some(forest_root), Some(schema)) = (
            root.text("rootDomainNamingContext"),
            root.text("schemaNamingContext"),
        ) else {
            return Err(fail(LdapError::Malformed(
                "the rootDSE names no rootDomainNamingContext or schemaNamingContext",
            )));
        };
        let class = Filter::Equal("lDAPDisplayName", adba::OBJECT_CLASS.to_string());
        let schema_class = !c
            .search(&schema, Scope::OneLevel, &class, &["cn"])
            .map_err(fail)?
            .is_empty();
        let container = adba::container_dn(&forest_root);
        let filter = Filter::Equal("objectClass", adba::OBJECT_CLASS.to_string());
        let found = match c.search(&container, Scope::OneLevel, &filter, &adba::ATTRIBUTES) {
            Ok(entries) => Some(entries),
            Err(e) if e.code() == Some(NO_SUCH_OBJECT) => None,
            Err(e) => return Err(fail(e)),
        };
        let mut objects: Vec<ActivationObject> =
            found.iter().flatten().map(activation_object).collect();
        objects.sort();
        Ok(AdState {
            server,
            identity: self.identity.clone(),
            forest_root,
            schema_class,
            container: found.is_some(),
            objects,
            located: match &self.servers {
                Servers::Declared(_) => None,
                Servers::Located { found, .. } => found.get().map(|f| f.location.clone()),
            },
        })
    }

    /// Deletes the activation object at exactly `dn`.
    pub fn delete(&self, dn: &str, timeout: Duration) -> Result<(), Error> {
        let (mut c, server) = self.bind(timeout)?;
        c.delete(dn).map_err(|e| self.error(&server, e))
    }
}

/// How long past its own deadline a directory read or delete is waited for: the sockets end by
/// the deadline, so only a call into the GSS-API library can still be running.
const GRACE: Duration = Duration::from_secs(1);

/// Reads the directory `bind` names, within `timeout` ([`Directory::read`]) in a thread of its
/// own. The Kerberos ticket request inside the bind is made by the system's GSS-API library
/// under that library's own timeouts (MIT krb5 waits about 25 s for a KDC that drips), which
/// kmsconf cannot shorten: past `timeout` (and [`GRACE`]), the thread is left to finish on its
/// own and the read is `no answer within N s from the Kerberos KDC`.
pub fn read_within(bind: &Bind, timeout: Duration) -> Result<AdState, Error> {
    within(bind, timeout, move |d| d.read(timeout))
}

/// Deletes the activation object at exactly `dn`, within `timeout`, as [`read_within`] reads.
pub fn delete_within(bind: &Bind, dn: &str, timeout: Duration) -> Result<(), Error> {
    let dn = dn.to_string();
    within(bind, timeout, move |d| d.delete(&dn, timeout))
}

fn within<T: Send + 'static>(
    bind: &Bind,
    timeout: Duration,
    work: impl FnOnce(&Directory) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let late = |source| Error::Ldap {
        server: bind.shown(),
        identity: bind
            .principal
            .clone()
            .unwrap_or_else(|| format!("the principal of {}", kmsconf_gssapi::default_ccache())),
        source: Box::new(source),
    };
    let owned = bind.clone();
    // the thread owns its bind and its GSS-API credentials and context; past the deadline it is
    // left to end by the library's own timeouts, and what it reads then goes nowhere
    crate::deadline::within("ldap", timeout + GRACE, move || {
        Directory::new(&owned).and_then(|d| work(&d))
    })
    .map_err(|e| late(LdapError::Io(e)))?
    .unwrap_or_else(|| Err(late(LdapError::KdcLate(timeout))))
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
        let state = read_within(&self.bind, self.timeout)?;
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
        Ok(batch
            .iter()
            .map(|op| match op {
                EntryOp::DeleteActivationObject { dn } => {
                    match delete_within(&self.bind, dn, self.timeout) {
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
                        self.bind.shown()
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
            target: format!("ldap://{}", self.bind.shown()),
            reason: "the directory has no apply lock to break".into(),
        })
    }
}
