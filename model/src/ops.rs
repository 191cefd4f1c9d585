//! Typed operations on a host. A [`PlanOp`] is what a plan file holds (secret *references*); a
//! [`TargetOp`] is what a target receives (secrets resolved, never serialized).

use std::path::PathBuf;

use crate::config::{GssTsig, ProductId, Profile, RuleGroup, TsigKey};
use crate::keys::{ConfirmationId, ProductKey};
pub use crate::settings::ServiceSetting;
use kmsconf_engine::secret::DeclaredSecret;
use serde::{Deserialize, Serialize};

/// One planned operation, as stored in a plan file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum PlanOp {
    InstallLicensePack {
        product: ProductId,
        /// The pack as written in the config, and where it is on disk.
        source: String,
        path: PathBuf,
    },
    InstallProductKey {
        product: ProductId,
        key: DeclaredSecret,
        /// The last five characters the plan was made with; apply refuses a key that changed.
        partial: String,
    },
    ActivateOnline {
        product: ProductId,
    },
    /// Phone activation without a confirmation ID yet: show the installation ID.
    ShowInstallationId {
        product: ProductId,
    },
    ActivateByPhone {
        product: ProductId,
        confirmation_id: DeclaredSecret,
    },
    /// Uninstalls the key of one product: `UninstallProductKey` on the SKU with this activation
    /// ID (`slmgr.vbs /upk <activation ID>`, never without one).
    UninstallProductKey {
        product: ProductId,
        activation_id: String,
        /// The last five characters of the key the plan saw there.
        partial: String,
    },
    /// Installs the public KMS client setup key (GVLK) of an edition of kmsconf's table.
    InstallClientKey {
        product: ProductId,
        /// The edition's id in `gvlks.toml`.
        edition: String,
    },
    SetService(ServiceSetting),
    /// `ClearKeyManagementServiceListeningPort`: the KMS host listens on 1688 again.
    ClearListeningPort,
    RestartService,
    SetRuleGroup {
        group: RuleGroup,
        enabled: bool,
        /// Empty = any remote address.
        remote_addresses: Vec<String>,
    },
    /// Enables or disables one built-in rule of a group by its `Name`; an enabled rule gets
    /// `profiles`, and `remote_addresses` when the config scopes it (`None`: its own scope stays).
    SetFirewallRule {
        group: RuleGroup,
        rule: String,
        enabled: bool,
        profiles: Vec<Profile>,
        remote_addresses: Option<Vec<String>>,
    },
    SetPortRule {
        port: u16,
        remote_addresses: Vec<String>,
        /// A plan from before kmsconf managed profiles opened the rule on all three.
        #[serde(default = "all_profiles")]
        profiles: Vec<Profile>,
    },
    RemovePortRule,
    /// Removes and/or adds one record of a zone's `_vlmcs._tcp` SRV RRset on the DNS server;
    /// apply sends all of a zone's records in one UPDATE.
    UpdateSrvRecord {
        zone: String,
        remove: Option<crate::dns::SrvRecord>,
        add: Option<crate::dns::SrvRecord>,
        /// The key that signs the update (a reference to its secret); `None` with `gss_tsig`
        /// or `insecure_updates = true`.
        tsig: Option<TsigKey>,
        /// GSS-TSIG (Kerberos) signing instead of `tsig`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gss_tsig: Option<Box<GssTsig>>,
    },
    /// Deletes the activation object at exactly `dn` over LDAP (`name` and `partial_key` are
    /// what the plan shows of it).
    DeleteActivationObject {
        dn: String,
        name: String,
        partial_key: String,
    },
    /// Creates the activation object `name` through this (the `via`) host's licensing service:
    /// `SoftwareLicensingService.DoActiveDirectoryOnlineActivation(key, name)`
    /// (`slmgr.vbs /ad-activation-online KEY NAME`).
    CreateActivationObject {
        name: String,
        key: DeclaredSecret,
        /// The last five characters the plan was made with; apply refuses a key that changed.
        partial: String,
    },
    /// Phone activation of the activation object `name` without a confirmation ID yet: this
    /// (the `via`) host's licensing service generates the forest's installation ID from the key
    /// (`GenerateActiveDirectoryOfflineActivationId`, `slmgr.vbs /ad-activation-get-iid KEY`),
    /// which the plan and apply show for the activation line.
    ShowActivationObjectInstallationId {
        name: String,
        key: DeclaredSecret,
        /// The last five characters the plan was made with; apply refuses a key that changed.
        partial: String,
    },
    /// Creates the activation object `name` from the activation line's confirmation ID through
    /// this (the `via`) host's licensing service:
    /// `DepositActiveDirectoryOfflineActivationConfirmation(key, confirmation ID, name)`
    /// (`slmgr.vbs /ad-activation-apply-cid KEY CID NAME`).
    CreateActivationObjectByPhone {
        name: String,
        key: DeclaredSecret,
        /// The last five characters the plan was made with; apply refuses a key that changed.
        partial: String,
        confirmation_id: DeclaredSecret,
    },
}

impl PlanOp {
    /// A secret this operation would read from the config file itself, if any (such an
    /// operation cannot be saved in a plan file).
    pub fn literal_secret(&self) -> Option<&DeclaredSecret> {
        match self {
            Self::InstallProductKey { key, .. }
            | Self::CreateActivationObject { key, .. }
            | Self::ShowActivationObjectInstallationId { key, .. }
            | Self::CreateActivationObjectByPhone { key, .. }
                if key.source.is_literal() =>
            {
                Some(key)
            }
            Self::ActivateByPhone {
                confirmation_id, ..
            } if confirmation_id.source.is_literal() => Some(confirmation_id),
            Self::CreateActivationObjectByPhone {
                confirmation_id, ..
            } if confirmation_id.source.is_literal() => Some(confirmation_id),
            Self::UpdateSrvRecord {
                tsig: Some(key), ..
            } if key.secret.source.is_literal() => Some(&key.secret),
            _ => None,
        }
    }
}

/// One operation handed to a target, secrets resolved.
#[derive(Debug, Clone)]
pub enum TargetOp {
    InstallLicensePack {
        product: ProductId,
        path: PathBuf,
    },
    InstallProductKey {
        product: ProductId,
        key: ProductKey,
    },
    ActivateOnline {
        product: ProductId,
    },
    ShowInstallationId {
        product: ProductId,
    },
    ActivateByPhone {
        product: ProductId,
        confirmation_id: ConfirmationId,
    },
    /// `UninstallProductKey` on the product instance whose `ID` is `activation_id`.
    UninstallProductKey {
        product: ProductId,
        activation_id: String,
    },
    SetService(ServiceSetting),
    ClearListeningPort,
    /// Restarts the Software Protection service; `expect`: the settings the plan wrote before
    /// it, which the running service must show afterwards (a value the host showed nowhere
    /// before the restart is verified here).
    RestartService {
        expect: Vec<ServiceSetting>,
    },
    SetRuleGroup {
        group: RuleGroup,
        enabled: bool,
        remote_addresses: Vec<String>,
    },
    SetFirewallRule {
        group: RuleGroup,
        rule: String,
        enabled: bool,
        profiles: Vec<Profile>,
        remote_addresses: Option<Vec<String>>,
    },
    SetPortRule {
        port: u16,
        remote_addresses: Vec<String>,
        profiles: Vec<Profile>,
    },
    RemovePortRule,
    /// `DoActiveDirectoryOnlineActivation(key, name)` on the host's `SoftwareLicensingService`:
    /// Windows creates the activation object `name` in the host's forest.
    CreateActivationObject {
        name: String,
        key: ProductKey,
    },
    /// `GenerateActiveDirectoryOfflineActivationId(key)` on the host's
    /// `SoftwareLicensingService`: the forest's installation ID for the activation object
    /// `name`, answered as a pending outcome that shows it. Changes nothing.
    ShowActivationObjectInstallationId {
        name: String,
        key: ProductKey,
    },
    /// `DepositActiveDirectoryOfflineActivationConfirmation(key, confirmation_id, name)` on the
    /// host's `SoftwareLicensingService`: Windows creates the activation object `name` in the
    /// host's forest from the activation line's confirmation ID.
    CreateActivationObjectByPhone {
        name: String,
        key: ProductKey,
        confirmation_id: ConfirmationId,
    },
}

fn all_profiles() -> Vec<Profile> {
    Profile::ALL.to_vec()
}

/// One operation handed to a plan entry's target: a KMS host's operation, or one record change
/// of a DNS server's `_vlmcs._tcp` RRset.
#[derive(Debug, Clone)]
pub enum EntryOp {
    Host(TargetOp),
    Srv(SrvRecordChange),
    /// The activation object at exactly this DN goes.
    DeleteActivationObject {
        dn: String,
    },
}

/// One record change of a zone's `_vlmcs._tcp` RRset, with the RRset as the plan saw it (the
/// prerequisite of the zone's atomic update) and the key that signs it, its secret read.
#[derive(Debug, Clone)]
pub struct SrvRecordChange {
    pub zone: String,
    pub expected: Vec<crate::dns::SrvRecord>,
    pub remove: Option<crate::dns::SrvRecord>,
    pub add: Option<crate::dns::SrvRecord>,
    /// `None` with `gss_tsig` or `insecure_updates = true`.
    pub tsig: Option<crate::dns::TsigCredentials>,
    pub gss_tsig: Option<Box<crate::dns::GssTsigCredentials>>,
}

/// The kinds of operation a lab fault can be aimed at (`kmsconf lab fault --op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    InstallLicense,
    InstallKey,
    UninstallKey,
    Activate,
    SetService,
    Firewall,
    Restart,
    Discover,
}

impl OpKind {
    pub const ALL: [OpKind; 8] = [
        Self::InstallLicense,
        Self::InstallKey,
        Self::UninstallKey,
        Self::Activate,
        Self::SetService,
        Self::Firewall,
        Self::Restart,
        Self::Discover,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Self::InstallLicense => "install-license",
            Self::InstallKey => "install-key",
            Self::UninstallKey => "uninstall-key",
            Self::Activate => "activate",
            Self::SetService => "set-service",
            Self::Firewall => "firewall",
            Self::Restart => "restart",
            Self::Discover => "discover",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.id() == text)
    }
}

impl TargetOp {
    pub fn kind(&self) -> OpKind {
        match self {
            Self::InstallLicensePack { .. } => OpKind::InstallLicense,
            Self::InstallProductKey { .. } => OpKind::InstallKey,
            Self::UninstallProductKey { .. } => OpKind::UninstallKey,
            Self::ActivateOnline { .. }
            | Self::ShowInstallationId { .. }
            | Self::ActivateByPhone { .. }
            | Self::CreateActivationObject { .. }
            | Self::ShowActivationObjectInstallationId { .. }
            | Self::CreateActivationObjectByPhone { .. } => OpKind::Activate,
            Self::SetService(_) | Self::ClearListeningPort => OpKind::SetService,
            Self::RestartService { .. } => OpKind::Restart,
            Self::SetRuleGroup { .. }
            | Self::SetFirewallRule { .. }
            | Self::SetPortRule { .. }
            | Self::RemovePortRule => OpKind::Firewall,
        }
    }
}
