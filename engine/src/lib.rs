//! The kmsconf engine: what any declarative engine needs, and nothing that knows what KMS is
//! beyond the shape of the configuration file.
//!
//! Data flows one way: [`config`] (TOML to validated model) -> the providers turn it into
//! [`plan::Change`]s -> [`graph`] orders them -> [`apply`] runs them through a [`target::Target`].

pub mod apply;
pub mod config;
pub mod diagnostic;
pub mod error;
pub mod graph;
pub mod lock;
pub mod plan;
pub mod secret;
pub mod target;
pub mod write;

pub use error::Error;
