//! The text of a client script. The PowerShell is the script: it calls the Software Licensing
//! service's CIM methods (rows of `model/data/windows.toml`) and checks each one's return value.
//! The batch file carries the same PowerShell after its last command and runs it with
//! `powershell.exe` by full path, so neither needs VBScript. Every value from the config is
//! checked to be printable ASCII and quoted for PowerShell; the batch file's own lines hold none.

use std::fmt::Write as _;

use kmsconf_model::catalog::{self, Edition};
use kmsconf_model::config::ProductId;
use kmsconf_model::coverage::coverage;

use super::{message, Script, Target};
use crate::cli::CliError;

/// The line the batch file's PowerShell starts at (written as two halves in the command that
/// looks for it, so the command does not find itself).
const MARKER: &str = "##kmsconf-powershell";

/// Refuses a value the script would carry that is not printable ASCII: a script is run on
/// clients, and a control character or a look-alike quote in it could end a string early.
pub(super) fn check_values(s: &Script) -> Result<(), CliError> {
    let values = match &s.target {
        Target::Machine { name, .. } => name,
        Target::Domain(domain) => domain,
    };
    match values.chars().find(|c| !(' '..='~').contains(c)) {
        Some(c) => Err(message(format!(
            "`{}` holds {:?}, which a client script does not carry: use the name clients reach the host by, in ASCII (an IDN in its `xn--` form)",
            crate::cli::terminal::inline(values),
            c
        ))),
        None => Ok(()),
    }
}

/// A PowerShell string literal: single quotes, each quote doubled (PowerShell also ends a
/// single-quoted string at the typographic quotes, so those are doubled too).
pub(super) fn ps_quote(value: &str) -> String {
    let mut out = String::from("'");
    for c in value.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Text for a comment line: printable ASCII only, anything else `?`, and nothing a batch file's
/// `rem` would act on (`%` expands, `^` at the end joins the next line).
fn comment_text(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            ' '..='~' if !matches!(c, '%' | '^' | '!' | '&' | '|' | '<' | '>' | '"') => c,
            _ => '?',
        })
        .collect()
}

fn target_text(t: &Target) -> String {
    match t {
        Target::Machine { name, port } => format!("{name}:{port}"),
        Target::Domain(domain) => format!("the KMS hosts of DNS domain {domain}"),
    }
}

fn header(s: &Script, comment: &str) -> String {
    let lines = [
        format!(
            "kmsconf client activation script for KMS host `{}` ({})",
            s.host_name,
            target_text(&s.target)
        ),
        format!(
            "Generated from {} by kmsconf {}; regenerate it rather than edit it.",
            s.config_name,
            env!("CARGO_PKG_VERSION")
        ),
        "Run it once on each volume-licensed client, as an administrator.".to_string(),
        "The keys below are Microsoft's public KMS client setup keys (GVLKs), not secrets."
            .to_string(),
        "It calls the Software Licensing service over CIM: no slmgr.vbs, ospp.vbs or VBScript."
            .to_string(),
    ];
    let mut out = String::new();
    for l in lines {
        let _ = writeln!(out, "{comment} {}", comment_text(&l));
    }
    out
}

/// The batch file: sets nothing from the config, runs its own PowerShell, passes on its exit code.
pub(super) fn cmd(s: &Script) -> String {
    let (first, second) = MARKER.split_at(2);
    let mut lines: Vec<String> = vec!["@echo off".into()];
    lines.extend(header(s, "rem").lines().map(str::to_string));
    lines.extend([
        "rem The PowerShell after `exit /b` is the script; this file runs it with Windows PowerShell.".to_string(),
        "setlocal".into(),
        "set \"KMSCONF_SCRIPT=%~f0\"".into(),
        format!("\"%SystemRoot%\\System32\\WindowsPowerShell\\v1.0\\powershell.exe\" -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command \"$text = [IO.File]::ReadAllText($env:KMSCONF_SCRIPT); $at = $text.IndexOf('{first}' + '{second}'); if ($at -lt 0) {{ exit 2 }}; try {{ & ([ScriptBlock]::Create($text.Substring($at))) }} catch {{ [Console]::Error.WriteLine($_.Exception.Message); exit 1 }}\""),
        "if errorlevel 1 (".into(),
        "    echo Activation failed: run `kmsconf explain CODE` with the error code shown above. 1>&2".into(),
        "    exit /b 1".into(),
        ")".into(),
        "exit /b 0".into(),
        MARKER.into(),
    ]);
    lines.extend(body(s).lines().map(str::to_string));
    let mut out = lines.join("\r\n");
    out.push_str("\r\n");
    out
}

/// The PowerShell script on its own.
pub(super) fn ps1(s: &Script) -> String {
    let mut out = header(s, "#");
    out.push_str("# Windows PowerShell runs a downloaded script with: powershell.exe -NoProfile -ExecutionPolicy Bypass -File <this file>\n");
    out.push_str(&body(s));
    out
}

/// What both forms run.
fn body(s: &Script) -> String {
    let mut lines: Vec<String> = vec!["$ErrorActionPreference = 'Stop'".into()];
    match &s.target {
        Target::Machine { name, port } => {
            lines.push(format!("$KmsMachine = {}", ps_quote(name)));
            lines.push(format!("$KmsPort = [uint32]{port}"));
        }
        Target::Domain(domain) => lines.push(format!("$KmsDomain = {}", ps_quote(domain))),
    }
    lines.push(format!(
        "$KmsTarget = {}",
        ps_quote(&target_text(&s.target))
    ));
    lines.push(PRELUDE.trim_end().into());
    lines.push("$service = Get-CimInstance -ClassName SoftwareLicensingService".into());
    lines.extend(install_keys(s));
    lines.extend(point_at(&s.target).iter().map(|l| l.to_string()));
    lines.push("Invoke-Licensing $service 'RefreshLicenseStatus'".into());
    lines.push(
        "# activate (slmgr.vbs /ato) each product with a KMS client key, then read its status back"
            .into(),
    );
    let app = |id| {
        catalog::product(id)
            .map(|p| p.application_id.clone())
            .unwrap_or_default()
    };
    // Office editions alone: Windows may be licensed otherwise (a MAK, retail), so it is left be
    if s.windows.is_some() || s.office.is_empty() {
        lines.push(format!(
            "Enable-KmsClient {} 'Windows'",
            ps_quote(&app(ProductId::Windows))
        ));
    }
    if let Some(first) = s.office.first() {
        lines.push(format!(
            "Enable-KmsClient {} {}",
            ps_quote(&app(first.product)),
            ps_quote(&catalog::product_name(first.product))
        ));
    }
    lines.push("Write-Output ('Activated against {0}.' -f $KmsTarget)".into());
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// `InstallProductKey` for each edition's GVLK; Office only where Windows' own service licenses it.
fn install_keys(s: &Script) -> Vec<String> {
    let install = |e: &Edition| {
        [
            format!("# {}", comment_text(&e.name)),
            format!(
                "Invoke-Licensing $service 'InstallProductKey' @{{ ProductKey = {} }}",
                ps_quote(&e.key)
            ),
        ]
    };
    let mut lines: Vec<String> = s.windows.into_iter().flat_map(install).collect();
    if let Some(first) = s.office.first() {
        let office = &coverage().office_licensing;
        lines.push(format!(
            "# {}: licensed by the same service on Windows version {} and later",
            comment_text(&catalog::product_name(first.product)),
            office.min_windows_version
        ));
        lines.push(format!("if ([Environment]::OSVersion.Version -lt [version]{}) {{ throw 'Office on this Windows is licensed by its own service (osppsvc): activate it with ospp.vbs' }}", ps_quote(&office.min_windows_version)));
        lines.extend(s.office.iter().copied().flat_map(install));
    }
    lines
}

/// Where the client looks for its KMS host: one machine and port, or a domain's SRV records.
fn point_at(target: &Target) -> &'static [&'static str] {
    match target {
        Target::Machine { .. } => &[
            "# use this KMS host (slmgr.vbs /skms NAME:PORT)",
            "Invoke-Licensing $service 'SetKeyManagementServiceMachine' @{ MachineName = $KmsMachine }",
            "Invoke-Licensing $service 'SetKeyManagementServicePort' @{ PortNumber = $KmsPort }",
        ],
        Target::Domain(_) => &[
            "# find KMS hosts in this domain's _vlmcs._tcp records (slmgr.vbs /skms-domain, then /ckms: a set host name would override the domain)",
            "Invoke-Licensing $service 'SetKeyManagementServiceLookupDomain' @{ LookupDomain = $KmsDomain }",
            "Invoke-Licensing $service 'ClearKeyManagementServiceMachine'",
            "Invoke-Licensing $service 'ClearKeyManagementServicePort'",
        ],
    }
}

/// The helpers: an elevation check, each CIM call with its return value checked, and the
/// activation of every keyed KMS client product of one application.
const PRELUDE: &str = r#"$identity = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
if (-not $identity.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) { throw 'run this script as an administrator (0x80070005 otherwise)' }
# The HRESULT of a failed call: the WMI error's error_Code, else one in the error's text.
function Get-HResult($ErrorRecord) {
    $e = $ErrorRecord.Exception
    while ($null -ne $e) {
        if ($e.PSObject.Properties['ErrorData'] -and $null -ne $e.ErrorData) {
            $code = $e.ErrorData.CimInstanceProperties['error_Code']
            if ($null -ne $code -and $null -ne $code.Value) { return ('0x{0:X8}' -f [uint32]$code.Value) }
        }
        $e = $e.InnerException
    }
    if (([string]$ErrorRecord.FullyQualifiedErrorId + ' ' + $ErrorRecord.Exception.Message) -match '0x[0-9A-Fa-f]{8}') { return $Matches[0] }
    return ('0x{0:X8}' -f $ErrorRecord.Exception.HResult)
}
# A CIM method call; a non-zero ReturnValue or a WMI error stops the script with its code.
function Invoke-Licensing($Instance, [string]$Method, [hashtable]$Arguments = @{}) {
    try {
        $result = Invoke-CimMethod -InputObject $Instance -MethodName $Method -Arguments $Arguments
    } catch {
        $code = Get-HResult $_
        throw ('{0} failed with {1}: run `kmsconf explain {1}`' -f $Method, $code)
    }
    if ($null -ne $result -and $result.PSObject.Properties['ReturnValue'] -and $null -ne $result.ReturnValue -and [uint32]$result.ReturnValue -ne 0) {
        throw ('{0} returned 0x{1:X8}: run `kmsconf explain 0x{1:X8}`' -f $Method, [uint32]$result.ReturnValue)
    }
}
# Activates every product of one application that holds a KMS client key (Description
# VOLUME_KMSCLIENT), then checks each is licensed (LicenseStatus 1).
function Enable-KmsClient([string]$ApplicationId, [string]$Name) {
    $filter = "ApplicationID = '{0}' AND PartialProductKey IS NOT NULL AND Description LIKE '%VOLUME_KMSCLIENT%'" -f $ApplicationId
    $products = @(Get-CimInstance -ClassName SoftwareLicensingProduct -Filter $filter)
    if ($products.Count -eq 0) { throw ('no {0} product holds a KMS client key: give the script an edition (kmsconf client-script --edition)' -f $Name) }
    foreach ($product in $products) {
        Write-Output ('Activating {0} against {1}' -f $product.Name, $KmsTarget)
        Invoke-Licensing $product 'Activate'
    }
    Invoke-Licensing $service 'RefreshLicenseStatus'
    foreach ($product in @(Get-CimInstance -ClassName SoftwareLicensingProduct -Filter $filter)) {
        if ($product.LicenseStatus -ne 1) { throw ('{0} is not licensed after activation (LicenseStatus {1})' -f $product.Name, $product.LicenseStatus) }
    }
}
"#;
