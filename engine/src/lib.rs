//! The kmsconf engine: what any declarative engine needs, and nothing that knows what KMS is.
//!
//! A domain (kmsconf's is in `kmsconf-model`) names its operation, state, target and verb types
//! through [`plan::Domain`]; the engine orders changes in a [`graph::Dag`], stores them in
//! [`plan::Plan`] files, runs them through a [`target::Target`] with [`apply`], and holds the
//! generic pieces around that: [`lock`]s, atomic [`write`]s, [`diagnostic`]s with spans and
//! self-redacting [`secret`]s. It does not read config files: that is the domain's vocabulary.

pub mod apply;
pub mod diagnostic;
pub mod error;
pub mod graph;
mod limit;
pub mod lock;
pub mod paths;
pub mod plan;
pub mod read;
pub mod schedule;
pub mod schema;
pub mod seal;
pub mod secret;
pub mod target;
#[cfg(test)]
mod testing;
pub mod write;

pub use error::Error;
