//! The scripts kmsconf runs on a Windows host: the shared prelude with the tables it needs,
//! discovery, the apply lock, and one block per operation of a batch, each writing through CIM,
//! the registry or the NetSecurity cmdlets and reading back what it wrote.

use std::fmt::Write as _;

use kmsconf_engine::secret::Secret;
use kmsconf_model::catalog;
use kmsconf_model::catalog::PORT_RULE_NAME;
use kmsconf_model::config::{ProductId, Profile, RuleGroup};
use kmsconf_model::ops::{ServiceSetting, TargetOp};
use kmsconf_model::settings::{RegistryKind, SettingValue, Write, SETTINGS};

use super::{quote, quote_list, Script};

const PRELUDE: &str = include_str!("prelude.ps1");
const DISCOVER: &str = include_str!("discover.ps1");
const LOCK: &str = include_str!("lock.ps1");
const UNLOCK: &str = include_str!("unlock.ps1");

/// The WQL filter for the products discovery reads: every keyed product, and the Office KMS
/// host SKUs by activation ID (present once their license pack is installed). Equality tests
/// only: no `LIKE`, whose cost and escaping WQL leaves to the provider.
fn product_filter() -> String {
    let mut filter = String::from("PartialProductKey IS NOT NULL");
    for id in ProductId::ALL {
        if let Some(activation_id) = catalog::product(id).and_then(|p| p.activation_id.clone()) {
            let _ = write!(filter, " OR ID = '{activation_id}'");
        }
    }
    filter
}

/// The WQL filter for one product's CIM instances.
fn filter_for(product: ProductId) -> String {
    match catalog::product(product) {
        Some(info) => match &info.activation_id {
            Some(id) => format!("ID = '{id}'"),
            None => format!(
                "ApplicationID = '{}' AND PartialProductKey IS NOT NULL",
                info.application_id
            ),
        },
        None => "ID = ''".to_string(),
    }
}

/// The prelude with the tables it needs (firewall rule names and groups, product filter).
fn prelude() -> String {
    let names = vec![PORT_RULE_NAME.to_string()];
    let groups: Vec<String> = RuleGroup::ALL
        .into_iter()
        .filter_map(|g| catalog::rule_group(g).map(|info| info.group.clone()))
        .collect();
    // what discovery and every read-back read of the KMS settings: each row's CIM property and
    // registry value
    let properties: Vec<String> = SETTINGS
        .iter()
        .filter_map(|s| s.property.map(String::from))
        .collect();
    let registry: Vec<String> = SETTINGS
        .iter()
        .filter_map(|s| s.write.registry().map(|r| r.name.to_string()))
        .collect();
    format!(
        "{PRELUDE}\n$RuleNames = {}\n$RuleGroups = {}\n$ProductFilter = {}\n$SettingProperties = {}\n$SettingRegistryValues = {}\n",
        quote_list(&names),
        quote_list(&groups),
        quote(&product_filter()),
        quote_list(&properties),
        quote_list(&registry)
    )
}

/// The discovery script: everything kmsconf manages, plus counters and the clock, in one run.
pub fn discovery_script() -> Script {
    Script {
        text: format!("{}\n{DISCOVER}", prelude()),
        secrets: Vec::new(),
    }
}

/// The script that takes the apply lock for `holder` (its JSON record; not a secret).
pub fn lock_script(holder: &str) -> Script {
    Script {
        text: format!("{}\n$Holder = {}\n{LOCK}", prelude(), quote(holder)),
        secrets: Vec::new(),
    }
}

/// The script that releases the apply lock whose record has `lock_id`.
pub fn unlock_script(lock_id: &str) -> Script {
    Script {
        text: format!("{}\n$LockId = {}\n{UNLOCK}", prelude(), quote(lock_id)),
        secrets: Vec::new(),
    }
}

/// The script for a batch: one `Invoke-KmsconfOp` block per operation, in order, each reporting
/// that it began and then its result with what it read back.
pub fn batch_script(batch: &[TargetOp]) -> Script {
    let mut text = prelude();
    let mut secrets = Vec::new();
    for (index, op) in batch.iter().enumerate() {
        let body = op_body(index, op, &mut secrets);
        let _ = write!(text, "\n# {}\nInvoke-KmsconfOp {index} {{\n", describe(op));
        for line in body.lines() {
            let _ = writeln!(text, "    {line}");
        }
        text.push_str("}\n");
    }
    Script { text, secrets }
}

fn describe(op: &TargetOp) -> String {
    match op {
        TargetOp::InstallLicensePack { product, .. } => {
            format!("{product}: install the license pack")
        }
        TargetOp::InstallProductKey { product, key } => {
            let kind = if catalog::is_client_key(key.secret().expose()) {
                "client"
            } else {
                "host"
            };
            format!("{product}: install the KMS {kind} key {}", key.masked())
        }
        TargetOp::UninstallProductKey {
            product,
            activation_id,
        } => match guid(activation_id) {
            Some(id) => format!("{product}: uninstall the key of SKU {id}"),
            None => format!("{product}: uninstall a key (the activation ID is not a GUID)"),
        },
        TargetOp::ActivateOnline { product } => format!("{product}: activate online"),
        TargetOp::ShowInstallationId { product } => format!("{product}: read the installation ID"),
        TargetOp::ActivateByPhone { product, .. } => {
            format!("{product}: deposit the confirmation ID")
        }
        TargetOp::SetService(s) => format!("service: {}", s.equivalent()),
        TargetOp::ClearListeningPort => "service: clear the KMS listening port".into(),
        TargetOp::RestartService => "service: restart the Software Protection service".into(),
        TargetOp::SetRuleGroup { group, .. } => format!("firewall: rule group {group}"),
        TargetOp::SetFirewallRule { rule, .. } => format!("firewall: rule {rule}"),
        TargetOp::SetPortRule { port, .. } => format!("firewall: {PORT_RULE_NAME} on TCP {port}"),
        TargetOp::RemovePortRule => format!("firewall: remove {PORT_RULE_NAME}"),
    }
}

const READ_SERVICE: &str =
    "[ordered]@{ Service = Get-KmsconfService; Registry = Get-KmsconfRegistry }";
const READ_FIREWALL: &str = "[ordered]@{ FirewallRules = Get-KmsconfFirewallRules }";

fn read_products(product: ProductId) -> String {
    format!(
        "[ordered]@{{ Products = Get-KmsconfProducts {} }}",
        quote(&filter_for(product))
    )
}

const REFRESH: &str =
    "Invoke-KmsconfMethod (Get-CimInstance -ClassName SoftwareLicensingService) 'RefreshLicenseStatus'";

/// One operation's block. A secret the operation needs is added to `secrets` under the
/// operation's index, and the script reads it from the request, never from its own text.
fn op_body(index: usize, op: &TargetOp, secrets: &mut Vec<(String, Secret)>) -> String {
    let secret_ref = format!("[string]$Request.secrets.'{index}'");
    match op {
        TargetOp::InstallLicensePack { product, path } => install_license_pack(*product, path),
        TargetOp::InstallProductKey { product, key } => {
            secrets.push((index.to_string(), key.secret().clone()));
            format!(
                "$svc = Get-CimInstance -ClassName SoftwareLicensingService\n\
                 $version = [string]$svc.Version\n\
                 Invoke-KmsconfMethod $svc 'InstallProductKey' @{{ ProductKey = {secret_ref} }}\n\
                 {REFRESH}\n\
                 Set-KmsconfKmsVersion $version\n\
                 {}",
                read_products(*product)
            )
        }
        TargetOp::UninstallProductKey {
            product: _,
            activation_id,
        } => uninstall_product_key(activation_id),
        TargetOp::ActivateOnline { product } => activate(*product, "'Activate'"),
        TargetOp::ShowInstallationId { product } => read_products(*product),
        TargetOp::ActivateByPhone {
            product,
            confirmation_id,
        } => {
            secrets.push((
                index.to_string(),
                Secret::new(confirmation_id.digits().to_string()),
            ));
            let call = format!("'DepositOfflineConfirmationId' @{{ InstallationId = $product.OfflineInstallationId; ConfirmationId = {secret_ref} }}");
            activate(*product, &call)
        }
        TargetOp::SetService(setting) => format!("{}\n{READ_SERVICE}", set_service(setting)),
        TargetOp::ClearListeningPort => format!("{}\n{READ_SERVICE}", clear_listening_port()),
        TargetOp::RestartService => format!(
            "Restart-Service -Name sppsvc -Force -WarningAction SilentlyContinue\n{READ_SERVICE}"
        ),
        TargetOp::SetRuleGroup { group, enabled, .. } => {
            format!("{}\n{READ_FIREWALL}", set_rule_group(*group, *enabled))
        }
        TargetOp::SetFirewallRule {
            rule,
            enabled,
            profiles,
            remote_addresses,
            ..
        } => format!(
            "{}\n{READ_FIREWALL}",
            set_firewall_rule(rule, *enabled, profiles, remote_addresses.as_deref())
        ),
        TargetOp::SetPortRule {
            port,
            remote_addresses,
            profiles,
        } => set_port_rule(*port, remote_addresses, profiles),
        TargetOp::RemovePortRule => format!(
            "Remove-NetFirewallRule -Name {} -ErrorAction SilentlyContinue\n{READ_FIREWALL}",
            quote(PORT_RULE_NAME)
        ),
    }
}

/// `UninstallProductKey` on the keyed product whose `ID` is `activation_id` (as `slmgr.vbs /upk
/// <activation ID>`, never the form without one), then what slmgr.vbs does after it: refresh
/// the license status, and rewrite or delete `KeyManagementServiceVersion` by whether a KMS host
/// product is left (the key install's `Set-KmsconfKmsVersion`). Reads back that SKU.
fn uninstall_product_key(activation_id: &str) -> String {
    let Some(id) = guid(activation_id) else {
        // host data that is not a GUID never reaches the script text
        return "throw '0x80070057 the activation ID the plan holds is not a GUID'".to_string();
    };
    format!(
        "$version = [string](Get-CimInstance -ClassName SoftwareLicensingService).Version\n\
         $product = @(Get-CimInstance -ClassName SoftwareLicensingProduct -Filter \"ID = '{id}' AND PartialProductKey IS NOT NULL\")\n\
         if ($product.Count -eq 0) {{ throw '0xC004F014 no product key is installed on SKU {id}' }}\n\
         Invoke-KmsconfMethod $product[0] 'UninstallProductKey'\n\
         {REFRESH}\n\
         Set-KmsconfKmsVersion $version\n\
         [ordered]@{{ Products = Get-KmsconfProducts \"ID = '{id}'\" }}"
    )
}

/// An activation ID as a WQL literal may hold it: a GUID, lowercase.
fn guid(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let groups: Vec<&str> = lower.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let hex = groups
        .iter()
        .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
    (lengths == [8, 4, 4, 4, 12] && hex).then_some(lower)
}

/// `ClearKeyManagementServiceListeningPort` on the service (Windows takes it on a KMS host only).
fn clear_listening_port() -> String {
    "Invoke-KmsconfMethod (Get-CimInstance -ClassName SoftwareLicensingService) 'ClearKeyManagementServiceListeningPort'".into()
}

/// Installs the license files of the pack at `path`: a folder's own `.xrm-ms` files (not its
/// subfolders), or one file. A pack that keeps one folder per host OS (the Office 2010 KMS host
/// pack: `win2k3`, `win7`, `win8`), whose own installer installs only the host OS's folder, is
/// refused with the folders named, so the config names the exact one.
fn install_license_pack(product: ProductId, path: &std::path::Path) -> String {
    format!(
            "$path = {path}\n\
             if (Test-Path -LiteralPath $path -PathType Container) {{ $files = @(Get-ChildItem -LiteralPath $path -Filter '*.xrm-ms' -File) }}\n\
             elseif (Test-Path -LiteralPath $path -PathType Leaf) {{ $files = @(Get-Item -LiteralPath $path) }}\n\
             else {{ throw ('0x80070002 license pack {{0}} does not exist on the host' -f $path) }}\n\
             if ($files.Count -eq 0) {{\n\
             \x20   $perOs = @(Get-ChildItem -LiteralPath $path -Directory -ErrorAction SilentlyContinue | Where-Object {{ @(Get-ChildItem -LiteralPath $_.FullName -Filter '*.xrm-ms' -File).Count -gt 0 }} | ForEach-Object {{ $_.Name }})\n\
             \x20   if ($perOs.Count -gt 0) {{ throw ('0x80070002 license pack {{0}} keeps its license files in one folder per host OS ({{1}}): set license_pack to the folder for this host''s Windows, the one the pack''s own installer would install' -f $path, ($perOs -join ', ')) }}\n\
             \x20   throw ('0x80070002 license pack {{0}} holds no .xrm-ms license files' -f $path)\n\
             }}\n\
             $svc = Get-CimInstance -ClassName SoftwareLicensingService\n\
             foreach ($file in $files) {{\n\
             \x20   if ($file.Extension -ne '.xrm-ms') {{ throw ('{{0}} is not a license file (.xrm-ms): run the pack on the host once, or point license_pack at the license files it installs' -f $file.Name) }}\n\
             \x20   Invoke-KmsconfMethod $svc 'InstallLicense' @{{ License = [IO.File]::ReadAllText($file.FullName) }}\n\
             }}\n\
             {REFRESH}\n\
             {}",
            read_products(product),
            path = quote(&path.display().to_string()),
        )
}

/// Calls `call` (a method name and its arguments) on the product's keyed instance.
fn activate(product: ProductId, call: &str) -> String {
    format!(
        "$product = Get-KmsconfKeyedProduct {}\n\
         Invoke-KmsconfMethod $product {call}\n\
         {REFRESH}\n\
         {}",
        quote(&filter_for(product)),
        read_products(product)
    )
}

/// Sets kmsconf's own rule for the KMS port on `profiles`, creating it if it is not there.
fn set_port_rule(port: u16, remote_addresses: &[String], profiles: &[Profile]) -> String {
    let scope = scope(remote_addresses);
    let profile = Profile::windows_list(profiles);
    format!(
                "$rule = Get-NetFirewallRule -Name {name} -ErrorAction SilentlyContinue\n\
                 if ($null -ne $rule) {{ $rule | Set-NetFirewallRule -Enabled True -Direction Inbound -Action Allow -Protocol TCP -LocalPort {port} -RemoteAddress {scope} -Profile {profile} }}\n\
                 else {{ New-NetFirewallRule -Name {name} -DisplayName 'kmsconf: KMS custom port (TCP-In)' -Enabled True -Direction Inbound -Action Allow -Protocol TCP -LocalPort {port} -RemoteAddress {scope} -Profile {profile} | Out-Null }}\n\
                 {READ_FIREWALL}",
                name = quote(PORT_RULE_NAME),
            )
}

fn scope(addresses: &[String]) -> String {
    if addresses.is_empty() {
        "Any".to_string()
    } else {
        quote_list(addresses)
    }
}

/// One built-in rule by its locale-independent `Name`: enabled on `profiles` (and scoped when
/// `remote_addresses` is given), or disabled.
fn set_firewall_rule(
    rule: &str,
    enabled: bool,
    profiles: &[Profile],
    remote_addresses: Option<&[String]>,
) -> String {
    if !enabled {
        return format!("Set-NetFirewallRule -Name {} -Enabled False", quote(rule));
    }
    let scope_arg = remote_addresses
        .map(|list| format!(" -RemoteAddress {}", scope(list)))
        .unwrap_or_default();
    format!(
        "Set-NetFirewallRule -Name {} -Enabled True -Profile {}{scope_arg}",
        quote(rule),
        Profile::windows_list(profiles)
    )
}

/// The script text that writes a setting, as its row says: its `SoftwareLicensingService`
/// method, or its registry value.
fn set_service(setting: &ServiceSetting) -> String {
    match &setting.setting().write {
        Write::Method { method, .. } => format!(
            "Invoke-KmsconfMethod (Get-CimInstance -ClassName SoftwareLicensingService) '{}' @{{ {} = {} }}",
            method.name,
            method.argument,
            argument(setting.value(), method.inverted)
        ),
        Write::Registry(reg) => match setting.value().registry_data(reg.inverted) {
            None => format!(
                "Remove-ItemProperty -Path $SppKey -Name {} -ErrorAction SilentlyContinue",
                reg.name
            ),
            Some(data) => format!(
                "New-ItemProperty -Path $SppKey -Name {} -PropertyType {} -Value ({}) -Force | Out-Null",
                reg.name,
                reg.kind.property_type(),
                registry_data(reg.kind, &data)
            ),
        },
    }
}

/// A value as a CIM method argument (`inverted`: the argument says the opposite).
fn argument(value: &SettingValue, inverted: bool) -> String {
    match value {
        SettingValue::U16(_) | SettingValue::U32(_) => format!("[uint32]{value}"),
        SettingValue::Bool(b) if *b != inverted => "$true".into(),
        SettingValue::Bool(_) => "$false".into(),
        SettingValue::List(list) => {
            let entries: Vec<String> = list.iter().map(ToString::to_string).collect();
            format!("[string[]]{}", quote_list(&entries))
        }
    }
}

/// Registry data as a PowerShell value of the registry type.
fn registry_data(kind: RegistryKind, data: &[String]) -> String {
    match kind {
        RegistryKind::MultiSz => format!("[string[]]{}", quote_list(data)),
        RegistryKind::Sz => quote(&data.concat()),
        RegistryKind::Dword => format!("[uint32]{}", data.concat()),
    }
}

/// A group kmsconf enables whole, by its group resource string; its rules keep their scope.
fn set_rule_group(group: RuleGroup, enabled: bool) -> String {
    let Some(info) = catalog::rule_group(group) else {
        return format!(
            "throw 'kmsconf has no facts about the {} group'",
            group.display_name()
        );
    };
    let enabled = if enabled { "True" } else { "False" };
    format!(
        "$rules = @(Get-NetFirewallRule -Group {} -Direction Inbound -ErrorAction SilentlyContinue)\n\
         if ($rules.Count -eq 0) {{ throw 'the host has none of the built-in rules of the {} group' }}\n\
         $rules | Set-NetFirewallRule -Enabled {enabled}",
        quote(&info.group),
        group.display_name()
    )
}
