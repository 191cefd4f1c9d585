//! Every environment variable kmsconf itself reads (secrets are read from the variables the
//! config names).

/// A tracing filter for logs on stderr, e.g. `KMSCONF_LOG=trace` or `KMSCONF_LOG=kmsconf_providers=debug`.
pub const LOG: &str = "KMSCONF_LOG";
/// When set and not empty, no colour (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";
/// The ssh command for `ssh://` targets, split on whitespace: `ssh` by default, e.g.
/// `ssh -F ./ci/ssh_config` or `ssh -o StrictHostKeyChecking=accept-new` (kmsconf's own options
/// come after, so these win).
pub const SSH: &str = "KMSCONF_SSH";
/// The longest wait, in seconds, for one round trip to a real host (default 600).
pub const TIMEOUT: &str = "KMSCONF_TIMEOUT";
/// A directory where each Windows host's agent session is recorded, as `DIR/NAME.jsonl`: the
/// requests with secrets replaced by their config references, the host's answers verbatim. A
/// `replay:PATH` target answers from such a file.
pub const RECORD: &str = "KMSCONF_RECORD";
/// A key (at least 32 characters, e.g. `openssl rand -hex 32`) for the HMAC of plan files: `plan
/// --out` signs with it, and `show` and `apply PLANFILE` accept only a plan signed with it. A
/// secret: never printed.
pub const PLAN_KEY: &str = "KMSCONF_PLAN_KEY";
