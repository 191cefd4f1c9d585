//! The PowerShell/CIM side of a real Windows KMS host: the scripts kmsconf runs there (one for
//! discovery, one per batch of operations, each reading back what it wrote), how they travel
//! (a fixed bootstrap on the command line, script and secrets on standard input), and how their
//! answers become a [`HostState`] and one [`ChangeStatus`] per operation.
//!
//! The transports ([`super::ssh`], [`super::local`]) only move bytes; everything about
//! PowerShell is here, so it is the same over SSH and locally, and testable without Windows.

use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use kmsconf_engine::secret::Secret;
use kmsconf_engine::target::ChangeStatus;
use kmsconf_model::config::{ProductId, RuleGroup};
use serde::Deserialize;
use serde_json::Value;

use super::cim::{self, CimFirewallRule, CimProduct, CimRegistry, CimService, Observations};
use kmsconf_model::catalog;
use kmsconf_model::catalog::PORT_RULE_NAME;
use kmsconf_model::ops::{ServiceSetting, TargetOp};
use kmsconf_model::state::{Channel, HostState, LicenseStatus};

const PRELUDE: &str = include_str!("powershell/prelude.ps1");
const DISCOVER: &str = include_str!("powershell/discover.ps1");
const LOCK: &str = include_str!("powershell/lock.ps1");
const UNLOCK: &str = include_str!("powershell/unlock.ps1");

/// The program a transport starts on the host.
pub const PROGRAM: &str = "powershell.exe";

/// Reads the request (base64 of UTF-8 JSON) from standard input and runs its script with its
/// input. Fixed text with no secret in it: this is all that appears on the command line. Its
/// preferences are global, so the NetSecurity cmdlets (CDXML functions, which do not see a
/// script's own preference variables) stop on errors too, and no progress record ("Preparing
/// modules for first use") reaches stderr.
const BOOTSTRAP: &str = "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue'; \
$raw = [Console]::In.ReadToEnd(); \
$request = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($raw.Trim())) | ConvertFrom-Json; \
& ([ScriptBlock]::Create($request.script)) $request.input";

/// The arguments after [`PROGRAM`]: no profile, no prompt, the bootstrap as `-EncodedCommand`
/// (UTF-16LE, base64) so no shell on the way (cmd.exe or PowerShell as the SSH server's default
/// shell) can reinterpret it.
pub fn arguments() -> Vec<String> {
    let utf16: Vec<u8> = BOOTSTRAP
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    [
        "-NoLogo",
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Bypass",
        "-EncodedCommand",
    ]
    .into_iter()
    .map(String::from)
    .chain([BASE64.encode(utf16)])
    .collect()
}

/// A script and the secrets it reads, ready to be sent on standard input.
pub struct Script {
    pub text: String,
    secrets: Vec<(String, Secret)>,
}

impl Script {
    /// What goes to the host's standard input: base64 of `{"script": ..., "input": {"secrets": ...}}`.
    /// Holds secrets: never log it.
    pub fn stdin(&self) -> Secret {
        let secrets: serde_json::Map<String, Value> = self
            .secrets
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.expose().to_string())))
            .collect();
        let doc = serde_json::json!({ "script": self.text, "input": { "secrets": secrets } });
        Secret::new(format!("{}\n", BASE64.encode(doc.to_string())))
    }

    /// Removes every secret of this script from a text the host sent back.
    pub fn redact(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_string(), |t, (_, s)| {
            if s.expose().is_empty() {
                t
            } else {
                t.replace(s.expose(), "<redacted>")
            }
        })
    }
}

/// A PowerShell single-quoted string. Doubling escapes a quote; PowerShell also takes the
/// typographic single quotes as quotes, so they are doubled too.
pub fn quote(text: &str) -> String {
    let mut out = String::from("'");
    for c in text.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| quote(i)).collect();
    format!("@({})", quoted.join(", "))
}

/// The WQL filter for the products discovery reads: every keyed product, every KMS host
/// channel, and the Office KMS host SKUs (present once their license pack is installed).
fn product_filter() -> String {
    let mut filter = String::from(
        "PartialProductKey IS NOT NULL OR (Description LIKE '%VOLUME_KMS%' AND NOT Description LIKE '%VOLUME_KMSCLIENT%')",
    );
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
    let mut names = Vec::new();
    let mut groups = Vec::new();
    for group in RuleGroup::ALL {
        if let Some(info) = catalog::rule_group(group) {
            names.extend(info.rule_names.iter().cloned());
            groups.extend(info.group.iter().cloned());
        }
    }
    names.push(PORT_RULE_NAME.to_string());
    format!(
        "{PRELUDE}\n$RuleNames = {}\n$RuleGroups = {}\n$ProductFilter = {}\n",
        quote_list(&names),
        quote_list(&groups),
        quote(&product_filter())
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
            format!("{product}: install the KMS host key {}", key.masked())
        }
        TargetOp::ActivateOnline { product } => format!("{product}: activate online"),
        TargetOp::ShowInstallationId { product } => format!("{product}: read the installation ID"),
        TargetOp::ActivateByPhone { product, .. } => {
            format!("{product}: deposit the confirmation ID")
        }
        TargetOp::SetService(s) => format!("service: {}", s.equivalent()),
        TargetOp::RestartService => "service: restart the Software Protection service".into(),
        TargetOp::SetRuleGroup { group, .. } => format!("firewall: rule group {group}"),
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

fn op_body(index: usize, op: &TargetOp, secrets: &mut Vec<(String, Secret)>) -> String {
    let secret_ref = format!("[string]$Request.secrets.'{index}'");
    let refresh = "Invoke-KmsconfMethod (Get-CimInstance -ClassName SoftwareLicensingService) 'RefreshLicenseStatus'";
    match op {
        TargetOp::InstallLicensePack { product, path } => format!(
            "$path = {path}\n\
             if (Test-Path -LiteralPath $path -PathType Container) {{ $files = @(Get-ChildItem -LiteralPath $path -Filter '*.xrm-ms' -Recurse -File) }}\n\
             elseif (Test-Path -LiteralPath $path -PathType Leaf) {{ $files = @(Get-Item -LiteralPath $path) }}\n\
             else {{ throw ('0x80070002 license pack {{0}} does not exist on the host' -f $path) }}\n\
             if ($files.Count -eq 0) {{ throw ('0x80070002 license pack {{0}} holds no .xrm-ms license files' -f $path) }}\n\
             $svc = Get-CimInstance -ClassName SoftwareLicensingService\n\
             foreach ($file in $files) {{\n\
             \x20   if ($file.Extension -ne '.xrm-ms') {{ throw ('{{0}} is not a license file (.xrm-ms): run the pack on the host once, or point license_pack at the license files it installs' -f $file.Name) }}\n\
             \x20   Invoke-KmsconfMethod $svc 'InstallLicense' @{{ License = [IO.File]::ReadAllText($file.FullName) }}\n\
             }}\n\
             {refresh}\n\
             {}",
            read_products(*product),
            path = quote(&path.display().to_string()),
        ),
        TargetOp::InstallProductKey { product, key } => {
            secrets.push((index.to_string(), key.secret().clone()));
            format!(
                "$svc = Get-CimInstance -ClassName SoftwareLicensingService\n\
                 Invoke-KmsconfMethod $svc 'InstallProductKey' @{{ ProductKey = {secret_ref} }}\n\
                 {refresh}\n\
                 {}",
                read_products(*product)
            )
        }
        TargetOp::ActivateOnline { product } => format!(
            "$product = Get-KmsconfKeyedProduct {}\n\
             Invoke-KmsconfMethod $product 'Activate'\n\
             {refresh}\n\
             {}",
            quote(&filter_for(*product)),
            read_products(*product)
        ),
        TargetOp::ShowInstallationId { product } => read_products(*product),
        TargetOp::ActivateByPhone {
            product,
            confirmation_id,
        } => {
            secrets.push((
                index.to_string(),
                Secret::new(confirmation_id.digits().to_string()),
            ));
            format!(
                "$product = Get-KmsconfKeyedProduct {}\n\
                 Invoke-KmsconfMethod $product 'DepositOfflineConfirmationId' @{{ InstallationId = $product.OfflineInstallationId; ConfirmationId = {secret_ref} }}\n\
                 {refresh}\n\
                 {}",
                quote(&filter_for(*product)),
                read_products(*product)
            )
        }
        TargetOp::SetService(setting) => format!("{}\n{READ_SERVICE}", set_service(setting)),
        TargetOp::RestartService => format!(
            "Restart-Service -Name sppsvc -Force -WarningAction SilentlyContinue\n{READ_SERVICE}"
        ),
        TargetOp::SetRuleGroup {
            group,
            enabled,
            remote_addresses,
        } => format!("{}\n{READ_FIREWALL}", set_rule_group(*group, *enabled, remote_addresses)),
        TargetOp::SetPortRule {
            port,
            remote_addresses,
        } => {
            let scope = scope(remote_addresses);
            format!(
                "$rule = Get-NetFirewallRule -Name {name} -ErrorAction SilentlyContinue\n\
                 if ($null -ne $rule) {{ $rule | Set-NetFirewallRule -Enabled True -Direction Inbound -Action Allow -Protocol TCP -LocalPort {port} -RemoteAddress {scope} }}\n\
                 else {{ New-NetFirewallRule -Name {name} -DisplayName 'kmsconf: KMS custom port (TCP-In)' -Enabled True -Direction Inbound -Action Allow -Protocol TCP -LocalPort {port} -RemoteAddress {scope} | Out-Null }}\n\
                 {READ_FIREWALL}",
                name = quote(PORT_RULE_NAME),
            )
        }
        TargetOp::RemovePortRule => format!(
            "Remove-NetFirewallRule -Name {} -ErrorAction SilentlyContinue\n{READ_FIREWALL}",
            quote(PORT_RULE_NAME)
        ),
    }
}

fn scope(addresses: &[String]) -> String {
    if addresses.is_empty() {
        "Any".to_string()
    } else {
        quote_list(addresses)
    }
}

fn set_service(setting: &ServiceSetting) -> String {
    let call = |method: &str, args: String| {
        format!(
            "Invoke-KmsconfMethod (Get-CimInstance -ClassName SoftwareLicensingService) '{method}' @{{ {args} }}"
        )
    };
    let flag = |b: bool| if b { "$true" } else { "$false" };
    match setting {
        ServiceSetting::Port(p) => call(
            "SetKeyManagementServiceListeningPort",
            format!("PortNumber = [uint32]{p}"),
        ),
        ServiceSetting::DnsPublishing(on) => call(
            "DisableKeyManagementServiceDnsPublishing",
            format!("DisablePublishing = {}", flag(!on)),
        ),
        ServiceSetting::LowPriority(low) => call(
            "EnableKeyManagementServiceLowPriority",
            format!("EnableLowPriority = {}", flag(*low)),
        ),
        ServiceSetting::ActivationInterval(m) => call(
            "SetVLActivationInterval",
            format!("ActivationInterval = [uint32]{m}"),
        ),
        ServiceSetting::RenewalInterval(m) => call(
            "SetVLRenewalInterval",
            format!("RenewalInterval = [uint32]{m}"),
        ),
        ServiceSetting::HostCaching(on) => call(
            "DisableKeyManagementServiceHostCaching",
            format!("DisableCaching = {}", flag(!on)),
        ),
        ServiceSetting::PublishDomains(list) if list.is_empty() => {
            "Remove-ItemProperty -Path $SppKey -Name DnsDomainPublishList -ErrorAction SilentlyContinue".into()
        }
        ServiceSetting::PublishDomains(list) => {
            let entries: Vec<String> = list.iter().map(ToString::to_string).collect();
            format!(
                "New-ItemProperty -Path $SppKey -Name DnsDomainPublishList -PropertyType MultiString -Value ([string[]]{}) -Force | Out-Null",
                quote_list(&entries)
            )
        }
    }
}

fn set_rule_group(group: RuleGroup, enabled: bool, remote_addresses: &[String]) -> String {
    let info = catalog::rule_group(group).cloned().unwrap_or_default();
    let mut find = String::from("$rules = @()\n");
    for name in &info.rule_names {
        let _ = writeln!(
            find,
            "$rules += @(Get-NetFirewallRule -Name {} -ErrorAction SilentlyContinue)",
            quote(name)
        );
    }
    if let Some(g) = &info.group {
        let _ = writeln!(
            find,
            "$rules += @(Get-NetFirewallRule -Group {} -Direction Inbound -ErrorAction SilentlyContinue)",
            quote(g)
        );
    }
    let _ = writeln!(
        find,
        "if ($rules.Count -eq 0) {{ throw 'the host has none of the built-in rules of the {} group' }}",
        group.display_name()
    );
    let enabled = if enabled { "True" } else { "False" };
    // only a scoped group's remote addresses are kmsconf's; other groups keep theirs
    let scope_arg = if info.scoped {
        format!(" -RemoteAddress {}", scope(remote_addresses))
    } else {
        String::new()
    };
    let _ = write!(
        find,
        "$rules | Set-NetFirewallRule -Enabled {enabled}{scope_arg}"
    );
    find
}

/// Windows PowerShell started with `-EncodedCommand` and redirected streams writes its error
/// and progress streams to stderr as CLIXML (`#< CLIXML`, then `<Objs ...>` holding
/// `<S S="Error">text_x000D__x000A_</S>` per error line and progress records): the error text
/// as a person reads it, progress dropped. Other stderr is returned as it is.
pub fn readable_stderr(stderr: &str) -> String {
    const MARKER: &str = "#< CLIXML";
    const OPEN: &str = "<S S=\"Error\">";
    let Some(start) = stderr.find(MARKER) else {
        return stderr.to_string();
    };
    let mut out = stderr[..start].to_string();
    let mut rest = &stderr[start + MARKER.len()..];
    while let Some(i) = rest.find(OPEN) {
        rest = &rest[i + OPEN.len()..];
        let Some(end) = rest.find("</S>") else {
            break;
        };
        out.push_str(&clixml_text(&rest[..end]));
        rest = &rest[end + "</S>".len()..];
    }
    out
}

/// A CLIXML string's text: XML entities, then PowerShell's `_xHHHH_` escapes (UTF-16 units).
fn clixml_text(escaped: &str) -> String {
    let xml = escaped
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    let mut units: Vec<u16> = Vec::new();
    let mut rest = xml.as_str();
    while let Some(i) = rest.find("_x") {
        let code = rest
            .get(i + 2..i + 7)
            .filter(|c| c.ends_with('_'))
            .and_then(|c| u16::from_str_radix(&c[..4], 16).ok());
        match code {
            Some(unit) => {
                units.extend(rest[..i].encode_utf16());
                units.push(unit);
                rest = &rest[i + 7..];
            }
            None => {
                units.extend(rest[..i + 2].encode_utf16());
                rest = &rest[i + 2..];
            }
        }
    }
    units.extend(rest.encode_utf16());
    String::from_utf16_lossy(&units)
}

/// One line of the host's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: String,
    pub json: String,
}

/// The `KMSCONF:` lines of the host's standard output, decoded; other lines are ignored.
pub fn messages(stdout: &str) -> Result<Vec<Message>, String> {
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("KMSCONF:"))
        .map(|rest| {
            let (kind, data) = rest
                .split_once(':')
                .ok_or_else(|| format!("malformed answer line `KMSCONF:{rest}`"))?;
            let bytes = BASE64
                .decode(data.trim())
                .map_err(|e| format!("answer `{kind}` is not base64: {e}"))?;
            let json =
                String::from_utf8(bytes).map_err(|_| format!("answer `{kind}` is not UTF-8"))?;
            Ok(Message {
                kind: kind.to_string(),
                json,
            })
        })
        .collect()
}

/// An error the script reported for itself (`KMSCONF:error:`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScriptError {
    h_result: Option<String>,
    message: Option<String>,
}

/// The JSON of the host's `kind` answer, or the error the script reported. `what` names the
/// step in messages (`discovery`, `lock`).
pub fn answer(stdout: &str, kind: &str, what: &str) -> Result<String, String> {
    let messages = messages(stdout)?;
    if let Some(m) = messages.iter().find(|m| m.kind == "error") {
        let e: ScriptError = cim::from_json(&m.json)?;
        let message = e.message.unwrap_or_default();
        return Err(match e.h_result.as_deref().and_then(catalog::parse_code) {
            Some(code) => format!(
                "{what} failed: {}",
                catalog::explain_failure(code, &message)
            ),
            None => format!("{what} failed: {message}"),
        });
    }
    messages
        .into_iter()
        .find(|m| m.kind == kind)
        .map(|m| m.json)
        .ok_or_else(|| format!("the host sent no {what} answer"))
}

/// Reads the discovery answer. `Err` holds a message for the user.
pub fn discovery(stdout: &str) -> Result<(HostState, Observations), String> {
    let json = answer(stdout, "discovery", "discovery")?;
    cim::parse_discovery(&json).map_err(|e| format!("cannot read the discovery answer: {e}"))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OpResult {
    index: usize,
    ok: bool,
    h_result: Option<String>,
    message: Option<String>,
    read_back: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Begin {
    index: usize,
}

/// How far the host got with a batch, from the lines it sent before the transport ended.
#[derive(Debug, Default)]
pub struct Progress {
    pub began: Vec<bool>,
    pub results: Vec<Option<ChangeStatus>>,
}

/// Reads a batch's answers: one outcome per operation the host reported on, each checked
/// against what it read back. Operations without a result are `None` in `results`; `began`
/// says whether the host started them.
pub fn batch_progress(
    batch: &[TargetOp],
    script: &Script,
    stdout: &str,
) -> Result<Progress, String> {
    let mut progress = Progress {
        began: vec![false; batch.len()],
        results: vec![None; batch.len()],
    };
    for m in messages(stdout)? {
        match m.kind.as_str() {
            "begin" => {
                let b: Begin = cim::from_json(&m.json)?;
                if let Some(slot) = progress.began.get_mut(b.index) {
                    *slot = true;
                }
            }
            "result" => {
                let r: OpResult = cim::from_json(&m.json)?;
                let Some(op) = batch.get(r.index) else {
                    return Err(format!(
                        "the host answered for operation {} of {}",
                        r.index,
                        batch.len()
                    ));
                };
                let index = r.index;
                progress.results[index] = Some(outcome(op, r, script));
            }
            _ => {}
        }
    }
    Ok(progress)
}

fn outcome(op: &TargetOp, r: OpResult, script: &Script) -> ChangeStatus {
    if !r.ok {
        let message = script.redact(
            r.message
                .as_deref()
                .unwrap_or("the host gave no message")
                .trim()
                // Windows' messages end in a period; the explanation follows after a colon
                .trim_end_matches('.'),
        );
        return match r.h_result.as_deref().and_then(catalog::parse_code) {
            Some(code) => ChangeStatus::failed(code, catalog::explain_failure(code, &message)),
            None => ChangeStatus::Failed {
                code: None,
                message,
            },
        };
    }
    let read_back = r.read_back.unwrap_or(Value::Null);
    match verify(op, &read_back) {
        Ok(outcome) => outcome,
        Err(message) => ChangeStatus::Failed {
            code: None,
            message: format!("the host accepted the change but did not take it: {message}"),
        },
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReadBack {
    #[serde(default, deserialize_with = "cim::one_or_many")]
    products: Vec<CimProduct>,
    service: Option<CimService>,
    registry: Option<CimRegistry>,
    #[serde(default, deserialize_with = "cim::one_or_many")]
    firewall_rules: Vec<CimFirewallRule>,
}

/// Checks what the host read back after an operation; `Err` says what did not take.
pub fn verify(op: &TargetOp, read_back: &Value) -> Result<ChangeStatus, String> {
    let rb: ReadBack = serde_json::from_value(read_back.clone())
        .map_err(|e| format!("the read-back is unreadable: {e}"))?;
    let product = |id: ProductId| -> Result<kmsconf_model::state::ProductState, String> {
        let p = cim::select_product(id, &rb.products)
            .ok_or_else(|| format!("the host shows no {} product", catalog::product_name(id)))?;
        cim::product_state(p)
    };
    match op {
        TargetOp::InstallLicensePack { product: id, .. } => {
            product(*id)?;
            Ok(ChangeStatus::Applied {
                detail: Some(format!("{} licenses installed", catalog::product_name(*id))),
            })
        }
        TargetOp::InstallProductKey { product: id, key } => verify_key(&product(*id)?, key),
        TargetOp::ActivateOnline { product: id }
        | TargetOp::ActivateByPhone { product: id, .. } => {
            let p = product(*id)?;
            if p.license_status != LicenseStatus::Licensed {
                return Err(format!(
                    "{} is {}, not licensed",
                    catalog::product_name(*id),
                    p.license_status
                ));
            }
            let how = if matches!(op, TargetOp::ActivateOnline { .. }) {
                "online"
            } else {
                "by phone"
            };
            Ok(ChangeStatus::Applied {
                detail: Some(format!("activated {how}")),
            })
        }
        TargetOp::ShowInstallationId { product: id } => {
            let iid = product(*id)?
                .installation_id
                .ok_or("the host shows no installation ID")?;
            Ok(ChangeStatus::Pending {
                message: format!(
                    "installation ID for {}: {iid}\n  call the activation line with it, then set `confirmation_id` for `{id}` and apply again",
                    catalog::product_name(*id)
                ),
            })
        }
        TargetOp::SetService(setting) => {
            let now = setting.current(&read_service(&rb)?);
            if &now != setting {
                return Err(format!("it reads back as `{}`", now.equivalent()));
            }
            Ok(ChangeStatus::applied())
        }
        TargetOp::RestartService => {
            if read_service(&rb)?.restart_pending {
                return Err(
                    "the service still runs with the settings from before the restart".into(),
                );
            }
            Ok(ChangeStatus::Applied {
                detail: Some("Software Protection service restarted".into()),
            })
        }
        TargetOp::SetRuleGroup {
            group,
            enabled,
            remote_addresses,
        } => verify_rule_group(&rb, *group, *enabled, remote_addresses),
        TargetOp::SetPortRule {
            port,
            remote_addresses,
        } => verify_port_rule(&rb, *port, remote_addresses),
        TargetOp::RemovePortRule => {
            let present = rb
                .firewall_rules
                .iter()
                .any(|r| r.name.eq_ignore_ascii_case(PORT_RULE_NAME));
            if present {
                return Err(format!("{PORT_RULE_NAME} is still there"));
            }
            Ok(ChangeStatus::applied())
        }
    }
}

/// The installed key is the one sent, and it installed as a KMS host key.
fn verify_key(
    p: &kmsconf_model::state::ProductState,
    key: &kmsconf_model::keys::ProductKey,
) -> Result<ChangeStatus, String> {
    if p.partial_key.as_deref() != Some(key.partial().as_str()) {
        return Err(format!(
            "the installed key ends in {}, not {}",
            p.partial_key.as_deref().unwrap_or("nothing"),
            key.partial()
        ));
    }
    if p.channel != Channel::KmsHost {
        return Err(format!(
            "the key installed as a {}, not a KMS host key",
            p.channel
        ));
    }
    Ok(ChangeStatus::Applied {
        detail: Some(format!("installed key {}", key.masked())),
    })
}

/// Every rule of the group is enabled (or disabled), and a scoped group has the addresses sent.
fn verify_rule_group(
    rb: &ReadBack,
    group: RuleGroup,
    enabled: bool,
    remote_addresses: &[String],
) -> Result<ChangeStatus, String> {
    let fw = cim::firewall(&rb.firewall_rules);
    let g = fw.groups.get(&group).ok_or("the group's rules are gone")?;
    if g.enabled != enabled {
        return Err(format!(
            "the {} rules are not all {}",
            group.display_name(),
            if enabled { "enabled" } else { "disabled" }
        ));
    }
    let scoped = catalog::rule_group(group).is_some_and(|i| i.scoped);
    if scoped && g.remote_addresses != remote_addresses {
        return Err(format!(
            "the rule's remote addresses read back as {:?}",
            g.remote_addresses
        ));
    }
    Ok(ChangeStatus::applied())
}

/// kmsconf's own port rule is enabled, on the port and from the addresses sent.
fn verify_port_rule(
    rb: &ReadBack,
    port: u16,
    remote_addresses: &[String],
) -> Result<ChangeStatus, String> {
    let fw = cim::firewall(&rb.firewall_rules);
    let rule = fw
        .port_rule
        .ok_or_else(|| format!("there is no enabled rule {PORT_RULE_NAME}"))?;
    if rule.port != port || rule.remote_addresses != remote_addresses {
        return Err(format!(
            "{PORT_RULE_NAME} reads back as TCP {} from {:?}",
            rule.port, rule.remote_addresses
        ));
    }
    Ok(ChangeStatus::applied())
}

fn read_service(rb: &ReadBack) -> Result<kmsconf_model::state::ServiceState, String> {
    let svc = rb
        .service
        .as_ref()
        .ok_or("the host read back no service properties")?;
    cim::service(svc, rb.registry.as_ref().unwrap_or(&CimRegistry::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsconf_model::config::PublishDomain;
    use kmsconf_model::keys::{ConfirmationId, ProductKey};
    use serde_json::json;

    const KEY: &str = "BCDFG-HJKMP-QRTVW-XY234-6789B";
    const CID: &str = "123456-234567-345678-456789-567890-678901-789012-890123";

    fn key() -> ProductKey {
        ProductKey::parse(&Secret::new(KEY)).expect("key")
    }

    /// Every kind of operation, in the order a full first apply would run them.
    fn every_op() -> Vec<TargetOp> {
        vec![
            TargetOp::InstallLicensePack {
                product: ProductId::Office2019,
                path: "C:\\packs\\office-2019 (it's here)".into(),
            },
            TargetOp::InstallProductKey {
                product: ProductId::Windows,
                key: key(),
            },
            TargetOp::ActivateOnline {
                product: ProductId::Windows,
            },
            TargetOp::ShowInstallationId {
                product: ProductId::Office2019,
            },
            TargetOp::ActivateByPhone {
                product: ProductId::Office2019,
                confirmation_id: ConfirmationId::parse(&Secret::new(CID)).expect("cid"),
            },
            TargetOp::SetService(ServiceSetting::Port(1689)),
            TargetOp::SetService(ServiceSetting::DnsPublishing(false)),
            TargetOp::SetService(ServiceSetting::PublishDomains(vec![PublishDomain {
                domain: "corp.example".into(),
                priority: 10,
                weight: 50,
            }])),
            TargetOp::SetService(ServiceSetting::PublishDomains(Vec::new())),
            TargetOp::SetService(ServiceSetting::LowPriority(true)),
            TargetOp::SetService(ServiceSetting::ActivationInterval(60)),
            TargetOp::SetService(ServiceSetting::RenewalInterval(20160)),
            TargetOp::SetService(ServiceSetting::HostCaching(false)),
            TargetOp::RestartService,
            TargetOp::SetRuleGroup {
                group: RuleGroup::KeyManagementService,
                enabled: true,
                remote_addresses: vec!["10.0.0.0/8".into()],
            },
            TargetOp::SetRuleGroup {
                group: RuleGroup::FileAndPrinterSharing,
                enabled: true,
                remote_addresses: Vec::new(),
            },
            TargetOp::SetPortRule {
                port: 1689,
                remote_addresses: Vec::new(),
            },
            TargetOp::RemovePortRule,
        ]
    }

    /// Compares with `targets/testdata/powershell/NAME`, byte for byte. These stay plain `.ps1`
    /// files rather than insta snapshots, so they read, lint and run as PowerShell; the switch
    /// that accepts every insta snapshot, `INSTA_UPDATE=always`, rewrites them too.
    fn golden(name: &str, actual: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/powershell")
            .join(name);
        if std::env::var("INSTA_UPDATE").is_ok_and(|v| v == "always") {
            std::fs::write(&path, actual).expect("write golden");
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            expected == actual,
            "{name} differs from its golden file (`INSTA_UPDATE=always` rewrites it)\n{actual}"
        );
    }

    #[test]
    fn the_discovery_script_matches_its_golden_file() {
        let script = discovery_script();
        golden("discovery.ps1", &script.text);
        assert!(script.text.contains("-Name $name") && script.text.contains("'SPPSVC-In-TCP'"));
        assert!(
            !script.text.contains("Key Management Service'"),
            "never the display name"
        );
    }

    #[test]
    fn the_batch_script_matches_its_golden_file_and_holds_no_secret() {
        let script = batch_script(&every_op());
        golden("batch.ps1", &script.text);
        assert!(!script.text.contains("HJKMP") && !script.text.contains("234567"));
        assert!(script.text.contains("[string]$Request.secrets.'1'"));
        assert!(script
            .text
            .contains("'C:\\packs\\office-2019 (it''s here)'"));
    }

    #[test]
    fn secrets_travel_only_on_standard_input() {
        let script = batch_script(&every_op());
        let stdin = script.stdin();
        let decoded = BASE64.decode(stdin.expose().trim()).expect("base64");
        let doc: Value = serde_json::from_slice(&decoded).expect("json");
        assert_eq!(doc["input"]["secrets"]["1"], KEY);
        assert_eq!(doc["input"]["secrets"]["4"], CID.replace('-', ""));
        assert_eq!(doc["script"], script.text);
        let args = arguments().join(" ");
        assert!(!args.contains("HJKMP") && args.contains("-EncodedCommand"));
        let encoded = arguments().last().cloned().unwrap_or_default();
        let utf16 = BASE64.decode(encoded).expect("base64");
        let units: Vec<u16> = utf16
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(String::from_utf16(&units).expect("utf16"), BOOTSTRAP);
        assert_eq!(
            script.redact(&format!("bad key {KEY}")),
            "bad key <redacted>"
        );
    }

    #[test]
    fn clixml_on_stderr_reads_as_the_error_text() {
        let stderr = concat!(
            "#< CLIXML\r\n",
            r#"<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">"#,
            r#"<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T></TN>"#,
            r#"<MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules for first use.</AV></PR></MS></Obj>"#,
            r#"<S S="Error">Access is denied. &lt;0x80070005&gt; at_x000D__x000A_</S>"#,
            r#"<S S="Error">line 2: 키 관리 서비스 _x005F_x0041_ a_b_x_</S></Objs>"#,
        );
        let text = readable_stderr(stderr);
        assert_eq!(
            text,
            "Access is denied. <0x80070005> at\r\nline 2: 키 관리 서비스 _x0041_ a_b_x_"
        );
        assert_eq!(
            super::super::process::tail(&text),
            "Access is denied. <0x80070005> at; line 2: 키 관리 서비스 _x0041_ a_b_x_"
        );
        assert_eq!(readable_stderr("plain error\n"), "plain error\n");
    }

    #[test]
    fn quoting_survives_every_single_quote_powershell_knows() {
        assert_eq!(quote("it's"), "'it''s'");
        assert_eq!(quote("a\u{2019}b"), "'a\u{2019}\u{2019}b'");
        assert_eq!(quote("$env:X `n"), "'$env:X `n'");
    }

    fn line(kind: &str, value: &Value) -> String {
        format!("KMSCONF:{kind}:{}\n", BASE64.encode(value.to_string()))
    }

    fn product(partial: &str, channel: &str, status: u32) -> Value {
        json!({
            "ID": "ef6cfc9f-8c5d-44ac-9aad-de6a2ea0ae03",
            "ApplicationID": "55c92734-d682-4d71-983e-d6ec3f16059f",
            "Description": "Windows(R) Operating System, VOLUME_KMS_WS22 channel",
            "PartialProductKey": partial, "ProductKeyChannel": channel, "LicenseStatus": status,
            "GracePeriodRemaining": 0, "OfflineInstallationId": "1234567", "LicenseIsAddon": false
        })
    }

    #[test]
    fn results_are_checked_against_what_the_host_read_back() {
        let batch = vec![
            TargetOp::InstallProductKey {
                product: ProductId::Windows,
                key: key(),
            },
            TargetOp::ActivateOnline {
                product: ProductId::Windows,
            },
            TargetOp::SetService(ServiceSetting::ActivationInterval(60)),
            TargetOp::SetService(ServiceSetting::Port(1689)),
        ];
        let script = batch_script(&batch);
        let service =
            json!({ "VLActivationInterval": 120, "KeyManagementServiceListeningPort": 1688 });
        let stdout = [
            "Windows PowerShell banner noise\n".to_string(),
            line("begin", &json!({ "Index": 0 })),
            line("result", &json!({ "Index": 0, "Ok": true, "ReadBack": { "Products": product("6789B", "Volume:CSVLK", 2) } })),
            line("begin", &json!({ "Index": 1 })),
            line("result", &json!({ "Index": 1, "Ok": false, "HResult": "0xC004F074", "Message": format!("key {KEY} no KMS") })),
            line("begin", &json!({ "Index": 2 })),
            line("result", &json!({ "Index": 2, "Ok": true, "ReadBack": { "Service": service, "Registry": {} } })),
            line("begin", &json!({ "Index": 3 })),
            line("result", &json!({ "Index": 3, "Ok": true, "ReadBack": { "Service": service, "Registry": { "KeyManagementServiceListeningPort": "1689" } } })),
        ]
        .concat();
        let progress = batch_progress(&batch, &script, &stdout).expect("reads");
        let out: Vec<ChangeStatus> = progress
            .results
            .into_iter()
            .map(|o| o.expect("all answered"))
            .collect();
        assert_eq!(
            out[0],
            ChangeStatus::Applied {
                detail: Some("installed key *****-*****-*****-*****-6789B".into())
            }
        );
        let ChangeStatus::Failed {
            code: Some(0xC004_F074),
            message,
        } = &out[1]
        else {
            panic!("{:?}", out[1])
        };
        assert!(
            message.contains("no KMS host could be contacted") && !message.contains("HJKMP"),
            "{message}"
        );
        let ChangeStatus::Failed {
            code: None,
            message,
        } = &out[2]
        else {
            panic!("{:?}", out[2])
        };
        assert!(
            message.contains("did not take") && message.contains("/sai 120"),
            "{message}"
        );
        assert_eq!(out[3], ChangeStatus::applied());
    }

    #[test]
    fn a_key_that_installs_as_another_channel_is_a_failure() {
        let op = TargetOp::InstallProductKey {
            product: ProductId::Windows,
            key: key(),
        };
        let e = verify(
            &op,
            &json!({ "Products": [product("6789B", "Volume:GVLK", 1)] }),
        )
        .expect_err("gvlk");
        assert!(e.contains("KMS client key"), "{e}");
        let e = verify(&op, &json!({ "Products": [] })).expect_err("none");
        assert!(e.contains("no Windows product"), "{e}");
    }

    #[test]
    fn a_phone_activation_shows_the_installation_id_as_pending() {
        let op = TargetOp::ShowInstallationId {
            product: ProductId::Windows,
        };
        let out = verify(
            &op,
            &json!({ "Products": product("6789B", "Volume:CSVLK", 0) }),
        )
        .expect("ok");
        assert!(
            matches!(&out, ChangeStatus::Pending { message } if message.contains("1234567")),
            "{out:?}"
        );
    }

    #[test]
    fn firewall_read_backs_are_compared_with_windows_address_forms() {
        let op = TargetOp::SetRuleGroup {
            group: RuleGroup::KeyManagementService,
            enabled: true,
            remote_addresses: vec!["10.0.0.0/8".into()],
        };
        let rule = |enabled: &str, address: &str| json!({ "FirewallRules": [{ "Name": "SPPSVC-In-TCP", "Direction": "Inbound", "Enabled": enabled, "LocalPort": "1688", "RemoteAddress": address }] });
        assert_eq!(
            verify(&op, &rule("True", "10.0.0.0/255.0.0.0")),
            Ok(ChangeStatus::applied())
        );
        assert!(verify(&op, &rule("False", "10.0.0.0/255.0.0.0")).is_err());
        assert!(verify(&op, &rule("True", "Any")).is_err());
        let remove = TargetOp::RemovePortRule;
        assert_eq!(
            verify(&remove, &json!({ "FirewallRules": [] })),
            Ok(ChangeStatus::applied())
        );
    }

    #[test]
    fn discovery_errors_carry_the_hresult_and_its_meaning() {
        let out = line(
            "error",
            &json!({ "HResult": "0x80070005", "Message": "Access denied" }),
        );
        let e = discovery(&out).expect_err("error");
        assert!(
            e.contains("0x80070005") && e.contains("administrative rights"),
            "{e}"
        );
        assert!(discovery("nothing")
            .expect_err("none")
            .contains("no discovery answer"));
        assert!(messages("KMSCONF:result:!!!").is_err());
    }
}
