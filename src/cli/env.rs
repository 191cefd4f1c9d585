//! Every environment variable kmsconf itself reads (secrets are read from the variables the
//! config names).

/// A tracing filter for logs on stderr, e.g. `KMSCONF_LOG=trace` or `KMSCONF_LOG=kmsconf_providers=debug`.
pub const LOG: &str = "KMSCONF_LOG";
/// When set and not empty, no colour (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";
