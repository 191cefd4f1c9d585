//! kmsconf's KMS vocabulary: the config file (wire types, validated types and their checks), the
//! key types, what discovery reads from a KMS host or a DNS server, the operations a plan holds,
//! and the knowledge tables with their sources. Pure data and checks: no I/O beyond reading a
//! config file and the secrets it names.
//!
//! [`Kms`] is the [`Domain`](kmsconf_engine::plan::Domain) that plugs these types into the
//! engine's plans and apply runs.

pub mod adba;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod coverage;
pub mod dns;
pub mod error;
pub mod events;
pub mod facts;
pub mod failure;
pub mod ids;
pub mod keys;
pub mod ops;
pub mod readings;
pub mod settings;
pub mod state;
pub mod surprise;
pub mod tables;
pub mod winrm_service;

use serde::{Deserialize, Serialize};

pub use error::Error;
pub use ops::{PlanOp, TargetOp};
pub use state::{EntryState, HostState};

/// Loads every knowledge table compiled in from `model/data/`, so that a defective build stops
/// with the table's file, line and column before a command runs, rather than meeting a table that
/// does not read halfway through one. (`adba.toml` is a table of sources the tests read; no code
/// reads it at run time.)
pub fn load_tables() -> Result<(), Error> {
    facts::load()?;
    catalog::load()?;
    coverage::load()?;
    Ok(())
}

/// What a change does, as shown in the plan (`+`, `~`, `-`, and the two KMS verbs).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
    Activate,
    Restart,
}

impl kmsconf_engine::plan::Verb for Action {
    const ALL: &'static [Self] = &[
        Self::Create,
        Self::Update,
        Self::Delete,
        Self::Activate,
        Self::Restart,
    ];

    fn symbol(self) -> char {
        match self {
            Self::Create | Self::Activate => '+',
            Self::Update | Self::Restart => '~',
            Self::Delete => '-',
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Activate => "activate",
            Self::Restart => "restart",
        }
    }
}

/// kmsconf's domain: KMS operations on KMS hosts (and the DNS server that publishes them).
#[derive(Debug, Clone, PartialEq)]
pub struct Kms;

impl kmsconf_engine::plan::Domain for Kms {
    type Op = PlanOp;
    type State = EntryState;
    type Target = config::TargetSpec;
    type Action = Action;
    const PLAN_KIND: &'static str = "kmsconf-plan";
    /// 2: each entry's observed state is tagged with its kind (`kms_host` or `dns_server`).
    /// 3: the file carries the `digest` of its content (and with a plan key its `hmac`).
    const FORMAT_VERSION: u32 = 3;
}

/// A plan as kmsconf makes it.
pub type KmsPlan = kmsconf_engine::plan::Plan<Kms>;
/// One host's part of a plan.
pub type KmsHostPlan = kmsconf_engine::plan::HostPlan<Kms>;
/// A planned change.
pub type KmsChange = kmsconf_engine::plan::Change<Kms>;
