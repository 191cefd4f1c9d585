//! `target = "winrm://…"` and `"winrm+https://…"`: Windows hosts through WinRM.

pub mod auth;
pub mod http;
