//! kmsconf providers: pure planners that turn a host's desired state and its observed
//! [`HostState`](kmsconf_model::HostState) into planned changes ([`licensing`], [`service`],
//! [`firewall`], each a [`Provider`]; a retired host's changes come from [`retire`]), the
//! `_vlmcs._tcp` SRV records of `[dns]` into zone changes ([`dns`]), and a host's state into the
//! config that reproduces it ([`export`]) or the rows `status` shows ([`status`]). No I/O:
//! providers never reach a host and never print; the application joins them with the targets.
//!
//! Modules import downwards only (`scripts/module-cycles.py` checks it): [`contract`] and the data
//! modules ([`export`], [`status`], [`shown`]) import no provider; the providers import those;
//! [`retire`] imports the service and firewall providers; [`registry`] alone names the providers
//! and drives them (`plan_host_with`, `export_with`, `host_status_with`).

pub mod adba;
pub mod contract;
pub mod dns;
pub mod error;
pub mod export;
pub mod firewall;
pub mod licensing;
pub mod registry;
pub mod retire;
pub mod service;
pub mod shown;
pub mod status;

pub use contract::{Planned, Provider};
pub use error::{Error, PlanError};
pub use registry::Providers;
