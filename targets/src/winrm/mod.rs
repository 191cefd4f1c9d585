//! `target = "winrm://…"` and `"winrm+https://…"`: a Windows host through WinRM, the way
//! Windows admins (and Ansible) already reach it. One connection and one authentication
//! context per host per run carry one `windows/shell/cmd` shell, in which PowerShell runs the
//! same agent as over ssh: the agent script and the requests (secrets included) go on its
//! standard input, sealed; the command line holds only the fixed bootstrap.

pub mod auth;
mod client;
pub mod encryption;
pub mod http;
mod shell;
pub mod wsman;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kmsconf_engine::secret::DeclaredSecret;

use super::process::Finished;
use super::session::Session;
use super::windows::Transport;
use crate::Error;

/// How the account authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// SPNEGO: Kerberos when the account's realm has a KDC kmsconf can find, else NTLM.
    Negotiate,
    Ntlm,
    Kerberos,
    /// HTTPS only.
    Basic,
}

/// Where and how to reach one host's WinRM service.
#[derive(Debug, Clone)]
pub struct WinRmOptions {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// `DOMAIN\user` or `user@domain`.
    pub user: String,
    pub password: DeclaredSecret,
    pub auth: AuthMethod,
    pub ca_file: Option<PathBuf>,
    /// WinRM's OperationTimeout: the longest a Receive waits for output before answering
    /// "nothing yet".
    pub operation_timeout: Duration,
}

/// The WinRM transport of one host.
#[derive(Debug, Clone)]
pub struct WinRmShell {
    options: WinRmOptions,
    /// What the password is called in errors (`hosts.kms01.winrm.password`).
    password_name: String,
    timeout: Duration,
    connect_timeout: Duration,
}

impl WinRmShell {
    pub fn new(host: &str, options: WinRmOptions, timeout: Duration, connect_timeout: Duration) -> Self {
        Self {
            options,
            password_name: format!("hosts.{host}.winrm.password"),
            timeout,
            connect_timeout,
        }
    }
}

impl Transport for WinRmShell {
    fn start(&self, host: &str) -> Result<Session, Error> {
        let password = self.options.password.resolve(&self.password_name)?;
        let deadline = Instant::now() + self.timeout;
        let connected = client::Client::connect(&self.options, password, self.connect_timeout)
            .and_then(|c| shell::ShellSession::start(c, deadline));
        match connected {
            Ok(session) => Ok(Box::new(session)),
            Err(broken) => Err(broken.error(host)),
        }
    }

    fn timeout(&self) -> Duration {
        self.timeout
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
