//! WinRM: the WS-Management messages of the WinRS shell and their `multipart/encrypted` framing.

pub mod encryption;
pub mod wsman;
