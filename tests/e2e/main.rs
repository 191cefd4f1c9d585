//! End-to-end tests: the real `kmsconf` binary against lab hosts in temporary directories.
//! One test binary (this crate) keeps the build short.
//!
//! The modules marked `cfg(unix)` start Linux daemons (BIND, Samba, sshd, an MIT KDC, the Python
//! WinRM endpoint), so a Windows build compiles them out; the rest run on Windows too
//! (`scripts/windows-check.sh` runs them under Wine), except single tests that need a Unix
//! program, marked the same way where they are.

#[cfg(unix)]
mod adba;
#[cfg(unix)]
mod agent;
mod bounded;
mod client_ids;
mod client_script;
#[cfg(unix)] // promtool and chromium
mod clients;
mod common;
mod config_schema;
#[cfg(unix)] // an ssh relay that damages the agent
mod contact;
mod corpus;
mod coverage;
mod day2;
#[cfg(unix)]
mod dns;
mod docs;
mod examples;
mod export;
mod failures;
mod firewall_groups;
mod fleet;
mod gitops;
#[cfg(unix)]
mod gss;
#[cfg(unix)] // a fake `ssh` (python) around the lab agent
mod hostile;
#[cfg(unix)] // an MIT KDC, Samba, the WinRM endpoint, /proc for peak memory
mod hostile_kdc;
#[cfg(unix)] // python-gssapi, an MIT KDC, /proc for peak memory
mod hostile_ldap;
#[cfg(unix)] // a fake `ssh` shell script, /proc for peak memory
mod hostile_net;
#[cfg(unix)]
mod hostile_session;
mod integrity;
#[cfg(windows)]
mod local;
#[cfg(unix)] // promtool and bash
mod metrics;
#[cfg(unix)]
mod mit_kdc;
mod pipelines;
mod plan_apply;
mod quickstart;
mod readme;
#[cfg(unix)] // records over the test sshd
mod recordings;
mod retire;
mod robustness;
mod schemas;
mod secrets;
#[cfg(unix)]
mod ssh;
mod surprises;
mod validate;
#[cfg(windows)]
mod windows_paths;
#[cfg(unix)]
mod winrm;
#[cfg(unix)]
mod winrm_binding;
#[cfg(unix)] // kill -9, and `script` for a terminal
mod winrm_idle;
#[cfg(unix)]
mod winrm_service;
#[cfg(unix)] // MIT Kerberos: the KDC, kinit and GSS-API
mod winrm_ticket;
