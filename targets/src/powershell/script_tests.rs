//! The agent script's own text: what it checks first, how it reads method results, and what it
//! does beside a call as `slmgr.vbs` does.

use super::*;

/// Constrained Language Mode is detected before anything else: the bootstrap's first statement
/// reads the language mode, and its answer is an error that says what to change.
#[test]
fn constrained_language_mode_is_detected_first_and_named() {
    assert!(BOOTSTRAP.starts_with("$mode = [string]$ExecutionContext.SessionState.LanguageMode;"));
    let e = message("KMSCONF-LANGUAGE-MODE:ConstrainedLanguage\r\n")
        .expect("an answer line")
        .expect_err("refused");
    assert!(
        matches!(&e, AgentError::LanguageMode { mode } if mode == "ConstrainedLanguage"),
        "{e}"
    );
    let e = e.to_string();
    assert!(
        e.contains("`ConstrainedLanguage` mode") && e.contains("FullLanguage"),
        "{e}"
    );
}

/// The text of the agent's function `name`, up to the next function.
pub(super) fn function(name: &str) -> &'static str {
    let agent = agent_script();
    let start = agent
        .find(&format!("function {name}("))
        .unwrap_or_else(|| panic!("no function {name}"));
    let rest = &agent[start..];
    let end = rest[1..].find("\nfunction ").map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

/// A method result without `ReturnValue`, or with a null one, is success; the HRESULT is also
/// read from the record's FullyQualifiedErrorId.
#[test]
fn method_results_and_hresults_are_read_robustly() {
    let method = function("Invoke-KmsconfMethod");
    assert!(method.contains("$result.PSObject.Properties['ReturnValue']"));
    assert!(method.contains("if ($null -ne $code -and [uint32]$code -ne 0)"));
    assert!(!agent_script().contains("$result.ReturnValue -ne 0"));
    assert!(function("Get-KmsconfHResult")
        .contains("[string]$ErrorRecord.FullyQualifiedErrorId -match '0x[0-9A-Fa-f]{8}'"));
}

/// `slmgr.vbs /ipk` writes KeyManagementServiceVersion (REG_SZ, also under Wow6432Node) when a
/// KMS host key is installed and deletes it otherwise; the agent's key install does the same.
#[test]
fn a_key_install_keeps_key_management_service_version_as_slmgr_does() {
    let text = function("Invoke-KmsconfInstallProductKey");
    let version = text
        .find("$version = [string]$svc.Version")
        .expect("read first");
    let install = text.find("'InstallProductKey'").expect("install");
    let write = text
        .find("Set-KmsconfKmsVersion $version")
        .expect("then written");
    assert!(version < install && install < write);
    assert!(agent_script().contains(
        "SOFTWARE\\Wow6432Node\\Microsoft\\Windows NT\\CurrentVersion\\SoftwareProtectionPlatform"
    ));
    let set = function("Set-KmsconfKmsVersion");
    assert!(set.contains("-Name 'KeyManagementServiceVersion' -PropertyType String"));
    assert!(set.contains("Remove-ItemProperty -Path $key -Name 'KeyManagementServiceVersion'"));
}

/// A license pack folder's own files only: a pack with one folder per host OS is refused with
/// the folders named, instead of installing every OS's licenses.
#[test]
fn a_license_pack_is_one_folder_not_a_tree() {
    let text = function("Invoke-KmsconfInstallLicensePack");
    assert!(!agent_script().contains("-Recurse"));
    assert!(text.contains("keeps its license files in one folder per host OS"));
    // the folder the pack's kms_host.vbs picks: win7 on 6.1, win8 on 6.2 and later
    assert!(text.contains("{ 'win8' } elseif ($v.Major -eq 6 -and $v.Minor -eq 1) { 'win7' }"));
}

/// Hosts older than Windows 8 / Server 2012 (6.2) are refused by name before any product query
/// names `ProductKeyChannel`, which their class lacks.
#[test]
fn discovery_refuses_hosts_older_than_6_2_before_querying_products() {
    let text = function("Invoke-KmsconfDiscover");
    let check = text
        .find("[version]$os.Version -lt [version]'6.2'")
        .expect("the version check");
    let products = text.find("Get-KmsconfProducts").expect("the product query");
    assert!(check < products);
    assert!(text.contains("kmsconf needs Windows 8 / Windows Server 2012 (version 6.2) or later"));
}
