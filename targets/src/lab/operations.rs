//! What a lab host does for each operation, one function per operation, answering with the
//! HRESULTs Windows gives (each a row of the facts table, `data/windows.toml`): a missing license
//! pack or key, a confirmation ID of another installation ID, no internet, an interval outside
//! the range WMI enforces; KMS settings that slmgr.vbs gates wait for an installed KMS host key.

use std::path::Path;

use kmsconf_engine::target::ChangeStatus;
use kmsconf_model::catalog;
use kmsconf_model::config::{ProductId, Profile, RuleGroup};
use kmsconf_model::facts::Method;
use kmsconf_model::keys::{ConfirmationId, ProductKey};
use kmsconf_model::ops::{ServiceSetting, TargetOp};
use kmsconf_model::state::{Channel, LicenseStatus, PortRule, ProductState, RuleGroupState};

use super::{confirmation_id_for, digits, installation_id, LabFile};

pub(super) const E_FILE_NOT_FOUND: u32 = 0x8007_0002;
pub(super) const E_INVALIDARG: u32 = 0x8007_0057;
pub(super) const SL_E_PKEY_NOT_INSTALLED: u32 = 0xC004_F014;
/// What the lab answers for an Office KMS host key installed before its license pack (see the
/// facts table, `data/windows.toml`, for why this code).
pub(super) const SL_E_INVALID_PRODUCT_KEY: u32 = 0xC004_F050;
pub(super) const SL_E_CIDIID_MISMATCHED: u32 = 0xC004_F031;
pub(super) const SL_E_CIDIID_INVALID_CHECK_DIGITS: u32 = 0xC004_F04D;
pub(super) const SL_E_NO_KMS_CONTACTED: u32 = 0xC004_F074;
pub(super) const SL_E_NETWORK: u32 = 0xC004_FC03;
/// The folder of the Office 2010 KMS host pack for Windows 6.2 and later (its kms_host.vbs).
const OFFICE_2010_PACK_FOLDER: &str = "win8";
/// The grace minutes of an activated product (180 days).
const ACTIVATED_GRACE_MINUTES: u32 = 259_200;

fn fail(code: u32, message: &str) -> ChangeStatus {
    ChangeStatus::failed(code, catalog::explain_failure(code, message))
}

/// Runs one operation on the lab host, unless a fault aimed at its kind fires first.
pub(super) fn run(file: &mut LabFile, op: &TargetOp) -> ChangeStatus {
    if let Some(code) = file.take_fault(op.kind()) {
        return fail(code, "injected lab fault");
    }
    match op {
        TargetOp::InstallLicensePack { product, path } => {
            install_license_pack(file, *product, path)
        }
        TargetOp::InstallProductKey { product, key } => install_product_key(file, *product, key),
        TargetOp::UninstallProductKey {
            product,
            activation_id,
        } => uninstall_product_key(file, *product, activation_id),
        TargetOp::ActivateOnline { product } => activate_online(file, *product),
        TargetOp::ShowInstallationId { product } => show_installation_id(file, *product),
        TargetOp::ActivateByPhone {
            product,
            confirmation_id,
        } => activate_by_phone(file, *product, confirmation_id),
        TargetOp::SetService(setting) => set_service(file, setting),
        TargetOp::ClearListeningPort => clear_listening_port(file),
        TargetOp::RestartService { .. } => restart_service(file),
        // the agent sets only `Enabled`: the group's rules keep their own scope
        TargetOp::SetRuleGroup { group, enabled, .. } => set_rule_group(file, *group, *enabled),
        TargetOp::SetFirewallRule {
            group,
            rule,
            enabled,
            profiles,
            remote_addresses,
        } => set_firewall_rule(
            file,
            *group,
            rule,
            *enabled,
            profiles,
            remote_addresses.as_deref(),
        ),
        TargetOp::SetPortRule {
            port,
            remote_addresses,
            profiles,
        } => {
            file.host.firewall.port_rule = Some(PortRule {
                port: *port,
                remote_addresses: remote_addresses.clone(),
                profiles: profiles.clone(),
            });
            ChangeStatus::applied()
        }
        TargetOp::RemovePortRule => {
            file.host.firewall.port_rule = None;
            ChangeStatus::applied()
        }
        TargetOp::CreateActivationObject { name, key } => ad_activation_online(file, name, key),
        TargetOp::ShowActivationObjectInstallationId { name, key } => {
            let iid = forest_installation_id(file, key);
            crate::powershell::pending_forest_installation_id(name, &iid)
        }
        TargetOp::CreateActivationObjectByPhone {
            name,
            key,
            confirmation_id,
        } => ad_activation_by_phone(file, name, key, confirmation_id),
    }
}

/// The installation ID the lab's licensing service generates for a CSVLK, for phone activation
/// of an activation object (`GenerateActiveDirectoryOfflineActivationId`): nine groups of seven
/// digits, as a product's, the same for the same host and key every time. (Windows derives it
/// from the key and the forest; the lab knows no forest, so its host stands in.)
pub(super) fn forest_installation_id(file: &LabFile, key: &ProductKey) -> String {
    let seed = format!("ad/{}/{}", file.host_id, key.secret().expose());
    super::digit_groups(super::fnv1a(seed.as_bytes()), 9, 7)
}

/// `DepositActiveDirectoryOfflineActivationConfirmation`: only the confirmation ID the phone
/// line gives for this key's installation ID is taken (a mistyped digit fails its group's check
/// digit first, as a product's does); the call is recorded with that installation ID, never
/// the key or the confirmation ID, and nothing is written to a directory. Phone activation
/// needs no internet.
fn ad_activation_by_phone(
    file: &mut LabFile,
    name: &str,
    key: &ProductKey,
    confirmation_id: &ConfirmationId,
) -> ChangeStatus {
    if let Some(group) = confirmation_id.failed_check_group() {
        return fail(
            SL_E_CIDIID_INVALID_CHECK_DIGITS,
            &format!("group {group} of the confirmation ID fails its check digit"),
        );
    }
    let iid = forest_installation_id(file, key);
    let expected = confirmation_id_for(&iid).as_deref().map(digits);
    if expected.as_deref() != Some(confirmation_id.digits()) {
        return fail(
            SL_E_CIDIID_MISMATCHED,
            &format!("the confirmation ID does not belong to installation ID {iid}"),
        );
    }
    file.ad_activations.push(super::AdActivationCall {
        method: kmsconf_model::adba::PHONE_METHOD.to_string(),
        name: name.to_string(),
        partial_key: key.partial(),
        installation_id: Some(iid),
    });
    ChangeStatus::Applied {
        detail: Some(format!(
            "activation object `{name}` requested by phone ({}, recorded by the lab; nothing is written to the directory)",
            kmsconf_model::adba::PHONE_METHOD
        )),
    }
}

/// `DoActiveDirectoryOnlineActivation`: recorded, never written to a directory. Like online
/// activation it needs Microsoft's activation servers.
fn ad_activation_online(file: &mut LabFile, name: &str, key: &ProductKey) -> ChangeStatus {
    if file.offline {
        return fail(
            SL_E_NETWORK,
            "the host cannot reach Microsoft's activation servers",
        );
    }
    file.ad_activations.push(super::AdActivationCall {
        method: kmsconf_model::adba::ONLINE_METHOD.to_string(),
        name: name.to_string(),
        partial_key: key.partial(),
        installation_id: None,
    });
    ChangeStatus::Applied {
        detail: Some(format!(
            "activation object `{name}` requested ({}, recorded by the lab; nothing is written to the directory)",
            kmsconf_model::adba::ONLINE_METHOD
        )),
    }
}

/// A pack folder that holds only one folder per host OS (as the Office 2010 KMS host pack does)
/// is refused, as on Windows, naming the folder the pack's own kms_host.vbs picks for a lab host
/// (a Windows Server of version 10.0: `win8`, for 6.2 and later).
fn install_license_pack(file: &mut LabFile, product: ProductId, path: &Path) -> ChangeStatus {
    if !path.exists() {
        return fail(
            E_FILE_NOT_FOUND,
            &format!("license pack `{}` does not exist", path.display()),
        );
    }
    let per_os = per_os_folders(path);
    if !per_os.is_empty() {
        return fail(
            E_FILE_NOT_FOUND,
            &format!(
                "license pack `{}` keeps its license files in one folder per host OS ({}): set license_pack to its `{OFFICE_2010_PACK_FOLDER}` folder, the one the pack's kms_host.vbs picks for Windows 10.0",
                path.display(),
                per_os.join(", ")
            ),
        );
    }
    file.host.license_packs.insert(product);
    file.host
        .products
        .entry(product)
        .or_insert_with(ProductState::empty);
    ChangeStatus::applied()
}

/// The subfolders of a folder that has no files of its own; empty for anything else.
fn per_os_folders(path: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    let entries: Vec<std::fs::DirEntry> = entries.filter_map(Result::ok).collect();
    if entries.iter().any(|e| e.path().is_file()) {
        return Vec::new();
    }
    let mut folders: Vec<String> = entries
        .iter()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    folders
}

/// An Office key needs its license pack; a Windows key starts its grace period. A published KMS
/// client setup key installs as a KMS client key, any other as a KMS host key.
fn install_product_key(file: &mut LabFile, product: ProductId, key: &ProductKey) -> ChangeStatus {
    let needs_pack = catalog::product(product).is_some_and(|p| p.license_pack);
    if needs_pack && !file.host.license_packs.contains(&product) {
        return fail(
            SL_E_INVALID_PRODUCT_KEY,
            &format!(
                "no {} license pack is installed, so the host knows no product this key belongs to",
                catalog::product_name(product)
            ),
        );
    }
    if catalog::is_client_key(key.secret().expose()) {
        return install_client_key(file, product, key);
    }
    let iid = installation_id(&file.host_id, product, key.secret().expose());
    let office = product.is_office();
    let group = super::groups::group(file, product, &key.partial());
    file.host.products.insert(
        product,
        ProductState {
            partial_key: Some(key.partial()),
            channel: Channel::KmsHost,
            license_status: if office {
                LicenseStatus::Unlicensed
            } else {
                LicenseStatus::InitialGrace
            },
            installation_id: Some(iid),
            grace_minutes: if office { 0 } else { 43200 },
            description: Some(super::groups::description(product, group)),
            ..ProductState::empty()
        },
    );
    ChangeStatus::Applied {
        detail: Some(format!("installed key {}", key.masked())),
    }
}

/// A KMS client key: the product waits in its grace period for a KMS host to activate it.
fn install_client_key(file: &mut LabFile, product: ProductId, key: &ProductKey) -> ChangeStatus {
    file.host.products.insert(
        product,
        ProductState {
            partial_key: Some(key.partial()),
            channel: Channel::KmsClient,
            license_status: LicenseStatus::InitialGrace,
            grace_minutes: 43200,
            ..ProductState::empty()
        },
    );
    ChangeStatus::Applied {
        detail: Some(format!(
            "installed KMS client key {}",
            key.secret().expose()
        )),
    }
}

/// `UninstallProductKey` on the SKU with `activation_id`: the product keeps its license pack
/// (Office) but no key; Windows without a key is no keyed product at all, as discovery sees it.
fn uninstall_product_key(
    file: &mut LabFile,
    product: ProductId,
    activation_id: &str,
) -> ChangeStatus {
    let keyed = file.host.products.get(&product).filter(|p| {
        p.partial_key.is_some()
            && super::activation_id(&file.host_id, product, p.channel)
                .eq_ignore_ascii_case(activation_id)
    });
    if keyed.is_none() {
        return fail(
            SL_E_PKEY_NOT_INSTALLED,
            &format!("no product key is installed on the {product} SKU {activation_id}"),
        );
    }
    if file.host.license_packs.contains(&product) {
        file.host.products.insert(product, ProductState::empty());
    } else {
        file.host.products.remove(&product);
    }
    ChangeStatus::Applied {
        detail: Some(format!("uninstalled the key of {activation_id}")),
    }
}

fn activate_online(file: &mut LabFile, product: ProductId) -> ChangeStatus {
    let offline = file.offline;
    let keyed = file
        .host
        .products
        .get_mut(&product)
        .filter(|p| p.partial_key.is_some());
    let Some(p) = keyed else {
        return fail(
            SL_E_PKEY_NOT_INSTALLED,
            &format!("no product key is installed for {product}"),
        );
    };
    if p.channel == Channel::KmsClient {
        return fail(
            SL_E_NO_KMS_CONTACTED,
            "the installed key is a KMS client key, which looks for a KMS host",
        );
    }
    if offline {
        return fail(
            SL_E_NETWORK,
            "the host cannot reach Microsoft's activation servers",
        );
    }
    p.license_status = LicenseStatus::Licensed;
    p.grace_minutes = ACTIVATED_GRACE_MINUTES;
    ChangeStatus::Applied {
        detail: Some("activated online".into()),
    }
}

fn show_installation_id(file: &LabFile, product: ProductId) -> ChangeStatus {
    let iid = file
        .host
        .products
        .get(&product)
        .and_then(|p| p.installation_id.clone());
    match iid {
        Some(iid) => ChangeStatus::Pending {
            message: format!(
                "installation ID for {}: {iid}\n  call the activation line with it, then set `confirmation_id` for `{product}` and apply again",
                catalog::product_name(product)
            ),
        },
        None => fail(
            SL_E_PKEY_NOT_INSTALLED,
            &format!("no KMS host key is installed for {product}"),
        ),
    }
}

/// Only the confirmation ID that belongs to the installation ID activates.
fn activate_by_phone(
    file: &mut LabFile,
    product: ProductId,
    confirmation_id: &ConfirmationId,
) -> ChangeStatus {
    let keyed = file
        .host
        .products
        .get_mut(&product)
        .filter(|p| p.channel == Channel::KmsHost);
    let Some(p) = keyed else {
        return fail(
            SL_E_PKEY_NOT_INSTALLED,
            &format!("no KMS host key is installed for {product}"),
        );
    };
    // a mistyped digit fails its group's check digit before the ID is compared (the facts
    // table's `cid-check-digit` model, unverified on Windows 8 and later)
    if let Some(group) = confirmation_id.failed_check_group() {
        return fail(
            SL_E_CIDIID_INVALID_CHECK_DIGITS,
            &format!("group {group} of the confirmation ID fails its check digit"),
        );
    }
    let iid = p.installation_id.clone().unwrap_or_default();
    let expected = confirmation_id_for(&iid).as_deref().map(digits);
    if expected.as_deref() != Some(confirmation_id.digits()) {
        return fail(
            SL_E_CIDIID_MISMATCHED,
            &format!("the confirmation ID does not belong to installation ID {iid}"),
        );
    }
    p.license_status = LicenseStatus::Licensed;
    p.grace_minutes = ACTIVATED_GRACE_MINUTES;
    ChangeStatus::Applied {
        detail: Some("activated by phone".into()),
    }
}

/// Applies a setting as its row says: a number outside a range Windows enforces is refused
/// with E_INVALIDARG, as WMI does.
fn set_service(file: &mut LabFile, setting: &ServiceSetting) -> ChangeStatus {
    let row = setting.setting();
    if row.needs_kms_host_key {
        if let Some(refused) =
            refuse_without_kms_host_key(file, &format!("`{}` is not set", row.key))
        {
            return refused;
        }
    }
    let refused = row
        .range
        .filter(|r| r.refused_by_windows)
        .zip(setting.value().number())
        .filter(|(range, n)| !range.contains(*n));
    if let Some((range, n)) = refused {
        return fail(
            E_INVALIDARG,
            &format!(
                "{n}{} is outside {} to {}",
                range.unit, range.min, range.max
            ),
        );
    }
    if setting.needs_restart() && file.running_service.is_none() {
        file.running_service = Some(file.host.service.clone());
    }
    let s = &mut file.host.service;
    s.store(row, setting.value().clone());
    if setting.needs_restart() {
        s.restart_pending = true;
    }
    ChangeStatus::applied()
}

/// The one KMS host gate: a refusal ending in `what` unless some product holds a KMS host key (what
/// slmgr.vbs checks before a gated setting, and what "applies to KMS hosts only" means for
/// `ClearKeyManagementServiceListeningPort`); activation is never looked at. slmgr.vbs only
/// warns, and no source names the HRESULT Windows gives, so the refusal carries none.
fn refuse_without_kms_host_key(file: &LabFile, what: &str) -> Option<ChangeStatus> {
    (!file.host.has_kms_host_key()).then(|| ChangeStatus::Failed {
        code: None,
        message: format!(
            "no KMS host key is installed (no keyed product has IsKeyManagementServiceMachine), so {what}"
        ),
    })
}

/// `ClearKeyManagementServiceListeningPort`, which applies to KMS hosts only: back to 1688
/// once the service restarts.
fn clear_listening_port(file: &mut LabFile) -> ChangeStatus {
    if Method::CLEAR_LISTENING_PORT.kms_host_only() {
        if let Some(refused) =
            refuse_without_kms_host_key(file, "the listening port is not cleared")
        {
            return refused;
        }
    }
    // the running service keeps listening where it did until the restart
    if file.running_service.is_none() {
        file.running_service = Some(file.host.service.clone());
    }
    file.host.service.clear_port();
    file.host.service.restart_pending = true;
    ChangeStatus::applied()
}

fn restart_service(file: &mut LabFile) -> ChangeStatus {
    file.host.service.restart_pending = false;
    file.running_service = None;
    ChangeStatus::Applied {
        detail: Some("Software Protection service restarted".into()),
    }
}

/// `Get-NetFirewallRule -Group G -Direction Inbound | Set-NetFirewallRule -Enabled`, as the agent
/// runs it: every inbound rule of the group the host has, its profiles and scope kept; a host
/// with none of them is refused as the agent refuses it.
fn set_rule_group(file: &mut LabFile, group: RuleGroup, enabled: bool) -> ChangeStatus {
    let Some(g) = file
        .host
        .firewall
        .groups
        .get_mut(&group)
        .filter(|g| !g.rules.is_empty())
    else {
        return ChangeStatus::Failed {
            code: None,
            message: format!(
                "the host has none of the built-in rules of the {} group",
                group.display_name()
            ),
        };
    };
    let mut rules = std::mem::take(&mut g.rules);
    for r in rules.values_mut() {
        r.enabled = enabled;
    }
    *g = RuleGroupState::from_rules(rules);
    ChangeStatus::applied()
}

/// `Set-NetFirewallRule -Name RULE`: a rule the host does not have is the cmdlet's not-found
/// error ([`rule_not_found`]); an enabled rule takes the profiles, and the scope when one is given.
/// What `Set-NetFirewallRule -Name RULE` gives for a rule the host lacks: PowerShell's
/// cmdletization not-found error, which carries no HRESULT (the facts table's row, unverified).
fn rule_not_found(rule: &str) -> ChangeStatus {
    ChangeStatus::Failed {
        code: None,
        message: kmsconf_model::facts::facts().rule_not_found(rule),
    }
}

fn set_firewall_rule(
    file: &mut LabFile,
    group: RuleGroup,
    rule: &str,
    enabled: bool,
    profiles: &[Profile],
    remote_addresses: Option<&[String]>,
) -> ChangeStatus {
    let Some(g) = file.host.firewall.groups.get_mut(&group) else {
        return rule_not_found(rule);
    };
    let mut rules = std::mem::take(&mut g.rules);
    let Some(r) = rules.get_mut(rule) else {
        g.rules = rules;
        return rule_not_found(rule);
    };
    r.enabled = enabled;
    if enabled {
        r.profiles = profiles.to_vec();
        if let Some(scope) = remote_addresses {
            r.remote_addresses = scope.to_vec();
        }
    }
    *g = RuleGroupState::from_rules(rules);
    ChangeStatus::applied()
}
