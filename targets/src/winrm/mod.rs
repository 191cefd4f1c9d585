//! `target = "winrm://…"` and `"winrm+https://…"`: a Windows host through WinRM, the way
//! Windows admins (and Ansible) already reach it. One connection and one authentication
//! context per host per run carry one `windows/shell/cmd` shell, in which PowerShell runs the
//! same agent as over ssh: the agent script and the requests (secrets included) go on its
//! standard input, sealed; the command line holds only the fixed bootstrap.

pub mod auth;
mod binding;
mod client;
pub use crate::error::winrm::Refusal;
pub mod encryption;
pub mod http;
mod shell;
pub mod wsman;

use std::path::PathBuf;
use std::time::Duration;

use kmsconf_engine::secret::{DeclaredSecret, SecretSource};
pub use kmsconf_model::config::WinRmAuth as AuthMethod;
use kmsconf_model::config::{default_winrm_port, TargetSpec};

use super::process::Finished;
use super::session::Session;
use super::windows::Transport;
use crate::Error;

pub use kmsconf_model::config::WINRM_PASSWORD_VARIABLE as PASSWORD_VARIABLE;

/// Where and how to reach one host's WinRM service.
#[derive(Debug, Clone)]
pub struct WinRmOptions {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// `DOMAIN\user` or `user@domain`.
    pub user: String,
    /// `None`: a Kerberos ticket (`keytab`, or the credential cache); with `ntlm` or `basic`
    /// (a target given on the command line), [`PASSWORD_VARIABLE`].
    pub password: Option<DeclaredSecret>,
    pub auth: AuthMethod,
    pub ca_file: Option<PathBuf>,
    /// WinRM's OperationTimeout: the longest a Receive waits for output before answering
    /// "nothing yet".
    pub operation_timeout: Duration,
    /// Without a password: whose ticket logs on (`None`: the cache's principal).
    pub principal: Option<String>,
    /// Without a password: the keytab holding `principal`'s keys (Kerberos reads it).
    pub keytab: Option<PathBuf>,
    /// The host's service principal: `HTTP/<host as written>` unless the config names one.
    pub service_principal: String,
}

/// The WinRM transport of one host.
#[derive(Debug, Clone)]
pub struct WinRmShell {
    options: WinRmOptions,
    /// What the password is called in errors (`hosts.kms01.winrm.password`).
    password_name: String,
    timeout: Duration,
    connect_timeout: Duration,
    lost: shell::Lost,
}

impl WinRmOptions {
    /// The options of a `winrm://` or `winrm+https://` target; `None` for another target.
    pub fn of(spec: &TargetSpec) -> Option<Self> {
        let TargetSpec::WinRm {
            https,
            user,
            host,
            port,
            winrm,
        } = spec
        else {
            return None;
        };
        Some(Self {
            https: *https,
            host: host.clone(),
            port: port.unwrap_or_else(|| default_winrm_port(*https)),
            user: user.clone(),
            password: winrm.password.clone(),
            auth: winrm.auth,
            ca_file: winrm.ca_file.clone(),
            operation_timeout: winrm.operation_timeout.duration(),
            principal: winrm.principal.clone(),
            keytab: winrm.keytab.as_ref().and_then(|k| match &k.source {
                SecretSource::File(path) => Some(path.clone()),
                _ => None,
            }),
            service_principal: winrm
                .service_principal
                .clone()
                .unwrap_or_else(|| format!("HTTP/{host}")),
        })
    }
}

impl WinRmShell {
    pub fn new(
        host: &str,
        options: WinRmOptions,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> Self {
        Self {
            options,
            password_name: format!("hosts.{host}.winrm.password"),
            timeout,
            connect_timeout,
            lost: shell::Lost::default(),
        }
    }
}

impl Transport for WinRmShell {
    fn start(&self, host: &str) -> Result<Session, Error> {
        let credential = self.credential(host)?;
        let connected = client::Client::connect(&self.options, credential, self.connect_timeout)
            .and_then(|c| {
                let idle = shell::idle_time(self.timeout, self.options.operation_timeout);
                shell::ShellSession::start(c, self.lost.clone(), idle)
            });
        match connected {
            Ok(session) => Ok(Box::new(session)),
            Err(broken) => Err(broken.error(host)),
        }
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn name(&self) -> &'static str {
        "WinRM"
    }

    fn failure(&self, host: &str, run: &Finished) -> Option<Error> {
        if let Some(broken) = &run.broken {
            return Some(broken.error(host));
        }
        run.timed_out.then(|| Error::Timeout {
            host: host.to_string(),
            seconds: self.timeout.as_secs(),
            during: "for the host to answer over WinRM".into(),
        })
    }
}

impl WinRmShell {
    /// What logs on: the password (read now), or a Kerberos ticket. NTLM and Basic always have
    /// a password: a config declares it, and a target given on the command line reads
    /// [`PASSWORD_VARIABLE`]; so do Negotiate and Kerberos there while the variable is set.
    fn credential(&self, host: &str) -> Result<auth::Credential, Error> {
        let o = &self.options;
        let password = match &o.password {
            Some(declared) => Some(declared.resolve(&self.password_name)?),
            None if !o.auth.takes_ticket() => Some(
                SecretSource::Env(PASSWORD_VARIABLE.into()).resolve(&format!(
                "{PASSWORD_VARIABLE} (the password of a WinRM target given on the command line)"
            ))?,
            ),
            None => None,
        };
        Ok(match password {
            Some(password) => auth::Credential::Password {
                user: o.user.clone(),
                password,
            },
            None => {
                if let Some(keytab) = &o.keytab {
                    // GSS-API reads the keytab; kmsconf only says plainly when it cannot be opened
                    std::fs::File::open(keytab).map_err(|e| Error::AuthRefused {
                        host: host.to_string(),
                        message: format!("the keytab `{}` cannot be read: {e}", keytab.display()),
                    })?;
                }
                auth::Credential::Ticket {
                    principal: o.principal.clone(),
                    keytab: o.keytab.clone(),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use kmsconf_model::facts::facts;

    /// The WS-Management constants the transport sends and reads are the facts table's.
    #[test]
    fn the_transports_constants_are_the_tables() {
        let f = facts();
        assert_eq!(f.winrm("shell-resource-uri"), super::wsman::RESOURCE_URI);
        assert_eq!(
            f.winrm("timed-out-fault"),
            super::wsman::TIMED_OUT_CODE.to_string()
        );
        assert_eq!(
            f.winrm("max-envelope-size"),
            super::wsman::Endpoint::new("x")
                .max_envelope_size
                .to_string()
        );
        assert_eq!(
            f.winrm("console-mode-stdin"),
            super::wsman::CONSOLE_MODE_STDIN
        );
        assert_eq!(
            f.winrm("shell-idle-timeout-minimum"),
            super::shell::MINIMUM_IDLE.as_millis().to_string()
        );
        assert!(
            super::encryption::content_type(super::encryption::Protocol::Spnego)
                .contains(&format!("protocol=\"{}\"", f.winrm("sealed-protocol")))
        );
    }
}
