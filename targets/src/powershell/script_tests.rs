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

/// The bootstrap checks, in this order, the language mode, then the SHA-256 of what it read
/// against the agent's (with the class of the facts table's `sha256` row), answering one framed
/// `damaged` line and exit code 1 on a mismatch, and only then runs the agent.
#[test]
fn the_bootstrap_runs_the_agent_only_once_its_sha256_matches() {
    use kmsconf_model::facts::facts;
    let text = bootstrap();
    assert_eq!(facts().agent("sha256"), SHA256_CLASS);
    assert_eq!(facts().agent("language-mode"), "FullLanguage");
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("`{needle}` not in {text}"))
    };
    let mode = at("$mode -ne 'FullLanguage'");
    let expected = at(&format!("$expected = '{}'", agent_sha256()));
    let hash = at(&format!("(New-Object {SHA256_CLASS}).ComputeHash($bytes)"));
    let refuse = at("if ($received -ne $expected) {");
    let damaged = at("'KMSCONF:damaged:'");
    let exit = text[damaged..].find("exit 1 }").map(|i| i + damaged);
    let run = at("[ScriptBlock]::Create(");
    assert!(mode < expected && expected < hash && hash < refuse && refuse < damaged);
    assert!(
        exit.is_some_and(|e| e < run),
        "exit 1 before the agent runs"
    );
    // nothing reads a request before the check: the one ReadLine is the agent's
    assert_eq!(text.matches("ReadLine()").count(), 1);
    assert!(!text.contains("AGENT_SHA256") && !text.contains("SHA256_CLASS"));
}

/// powershell.exe reads a redirected stdin to its end on a thread of its own when its command
/// names `$input` (the facts table's `stdin-reader` row): the bootstrap never does, and reads the
/// agent line with `[Console]::In`, so the agent and every request reach the agent, not the host.
#[test]
fn the_bootstrap_leaves_stdin_to_console_in() {
    use kmsconf_model::facts::facts;
    let text = bootstrap().to_ascii_lowercase();
    let reader = facts().agent("stdin-reader");
    assert!(
        !reader.is_empty() && text.contains(&reader.to_ascii_lowercase()),
        "{text}"
    );
    // `$input` as a variable: not followed by another name character
    let names_input = text.match_indices("$input").any(|(i, m)| {
        !text[i + m.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
    });
    assert!(!names_input, "the bootstrap names $input: {text}");
}

/// SHA-256 in lowercase hex (FIPS 180-2's `abc` vector), as the bootstrap writes it.
#[test]
fn sha256_is_lowercase_hex() {
    assert_eq!(
        sha256(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(agent_sha256(), sha256(agent_script().as_bytes()));
}

/// The bootstrap's `damaged` line is an error naming both hashes and the byte counts; one whose
/// JSON is not a report is a malformed line, never an answer.
#[test]
fn a_damaged_line_is_an_error_with_both_hashes() {
    let body = r#"{"Expected":"aa","Received":"bb","Bytes":12}"#;
    let line = format!("KMSCONF:damaged:{}\r\n", BASE64.encode(body));
    let e = message(&line)
        .expect("an answer line")
        .expect_err("damaged");
    let AgentError::Damaged(damage) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(damage.bytes, Some(12));
    let text = e.to_string();
    assert!(
        text.contains("SHA-256 `aa`")
            && text.contains("decoded 12 bytes with SHA-256 `bb`")
            && text.contains(&format!("sent {} bytes", agent_script().len()))
            && text.contains("nothing was run"),
        "{text}"
    );
    let not_base64 = r#"{"Expected":"aa","Received":"","Bytes":null}"#;
    let line = format!("KMSCONF:damaged:{}", BASE64.encode(not_base64));
    let text = message(&line)
        .expect("line")
        .expect_err("damaged")
        .to_string();
    assert!(text.contains("not that line in base64"), "{text}");
    let line = format!("KMSCONF:damaged:{}", BASE64.encode("{}"));
    assert!(matches!(
        message(&line).expect("line"),
        Err(AgentError::MalformedLine { .. })
    ));
}

/// The text of the agent's function `name`, up to the next function.
pub(super) fn function(name: &str) -> &'static str {
    let agent = agent_script();
    let start = agent
        .find(&format!("function {name}("))
        .or_else(|| agent.find(&format!("function {name} {{")))
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

/// Issue 24: discovery reads the unverified facts (the readings) before the product query, and a
/// class without `ProductKeyChannel` is queried without it (a local list the product functions
/// see, not a script-scope variable the agent's own list would shadow) so kmsconf can report it.
/// The edition is read as numbers, the caption only shown.
#[test]
fn discovery_reads_the_facts_first_and_the_edition_as_numbers() {
    let text = function("Invoke-KmsconfDiscover");
    let readings = text.find("Get-KmsconfReadings").expect("the readings");
    let products = text.find("Get-KmsconfProducts").expect("the product query");
    assert!(readings < products);
    assert!(text.contains("{ $ProductProperties = @($ProductProperties | Where-Object { $_ -ne 'ProductKeyChannel' }) }"));
    assert!(!text.contains("$script:"));
    assert!(text.contains("-Property 'Caption', 'Version', 'BuildNumber', 'OperatingSystemSKU'"));
    assert!(text.contains("Readings = $readings"));
    let read = function("Get-KmsconfReadings");
    for part in [
        "$PSVersionTable.PSVersion",
        "$ExecutionContext.SessionState.LanguageMode",
        "Get-CimClass -ClassName SoftwareLicensingProduct",
        "CimClassProperties['ProductKeyChannel']",
        "GetValueKind($name)",
        "@($FactRegistryValues)",
    ] {
        assert!(read.contains(part), "{part}");
    }
    // each setting's registry value under its own key (all under SoftwareProtectionPlatform),
    // while the readings look under every key the table knows, the Vista-era `sl` too
    assert!(agent_script()
        .contains("$SettingRegistryKeys = @('spp', 'spp', 'spp', 'spp', 'spp', 'spp')"));
    assert!(agent_script()
        .contains("    sl = 'HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\SL'"));
    assert!(function("Get-KmsconfRegistry")
        .contains("$RegistryKeys[[string]@($SettingRegistryKeys)[$i]]"));
}

/// `read_winrm_service` is in the agent's operation table, and its function reads each setting
/// the answer's fields name from the locale-independent WSMan: drive (never `winrm get`).
#[test]
fn the_agent_reads_the_winrm_service_from_the_wsman_drive() {
    let op = super::request::Request::read_winrm_service().op;
    assert!(agent_script().contains(&format!(
        "'{op}' = @('result', ${{function:Invoke-KmsconfReadWinRmService}})"
    )));
    let body = function("Invoke-KmsconfReadWinRmService");
    for path in [
        "'Service\\AllowUnencrypted'",
        "'Service\\Auth\\Basic'",
        "'Service\\Auth\\Kerberos'",
        "'Service\\Auth\\Negotiate'",
        "'Service\\Auth\\CredSSP'",
        "'Service\\Auth\\CbtHardeningLevel'",
        "'MaxTimeoutms'",
        "'Shell\\MaxShellsPerUser'",
        "'Shell\\IdleTimeout'",
        "\"$root\\Listener\"",
    ] {
        assert!(body.contains(path), "{path}");
    }
    // every field the Rust side reads is one the agent writes
    let wire =
        serde_json::to_value(kmsconf_model::winrm_service::WireWinRmService::windows_default())
            .expect("json");
    for field in wire.as_object().expect("object").keys() {
        assert!(body.contains(&format!("{field} = ")), "{field}");
    }
    assert!(!body.contains("winrm get"));
}

/// The functions that read `$Request`: `name`'s own `$Request.FIELD` reads (lowercase: PowerShell
/// property names ignore case) and those of each agent function it hands `$Request` to.
fn request_fields(name: &str, seen: &mut Vec<String>, fields: &mut Vec<String>) {
    if seen.iter().any(|s| s == name) {
        return;
    }
    seen.push(name.to_string());
    let text = function(name);
    let body = &text[text.find('{').unwrap_or(0)..];
    for (i, _) in body.match_indices("$Request") {
        let rest = &body[i + "$Request".len()..];
        if let Some(field) = rest.strip_prefix('.') {
            let end = field
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(field.len());
            fields.push(field[..end].to_ascii_lowercase());
        } else {
            // `Get-KmsconfProductFilter $Request`: the word before is the function called
            let before = body[..i].trim_end();
            let word = before
                .rsplit(|c: char| c.is_whitespace() || c == '(')
                .next()
                .unwrap_or_default();
            if word.contains("-Kmsconf") {
                request_fields(word, seen, fields);
            }
        }
    }
}

/// The agent runs under `Set-StrictMode -Version 2.0`, where reading a property an object lacks
/// throws ("The property 'x' cannot be found on this object"). So every `$Request.FIELD` an
/// operation's function reads, itself or through a helper it hands `$Request` to, must be a
/// field of every request kmsconf sends for that operation (null where it has no value); the lab
/// agent, which is Rust, would never notice a missing one.
#[test]
fn every_request_field_the_agent_reads_is_in_each_request_it_is_sent() {
    let agent = agent_script();
    let mut requests: Vec<Request> = super::tests::every_op()
        .iter()
        .map(Request::operation)
        .collect();
    requests.extend([
        Request::discover(),
        Request::lock("{}"),
        Request::unlock("lock-id"),
        Request::read_winrm_service(),
        Request::read_kms_events(&kmsconf_model::events::EventQuery::window(3600)),
    ]);
    let mut checked = 0;
    for request in &requests {
        let line: serde_json::Value =
            serde_json::from_str(request.line().expose()).expect("a JSON line");
        let sent: Vec<String> = line
            .as_object()
            .expect("an object")
            .keys()
            .map(|k| k.to_ascii_lowercase())
            .collect();
        // the operation table's row: `'op' = @('kind', ${function:NAME})`
        let row = format!("'{}' = @(", request.op);
        let at = agent
            .find(&row)
            .unwrap_or_else(|| panic!("`{}` is not in the agent's operation table", request.op));
        let rest = &agent[at..];
        let start = rest.find("${function:").expect("a function") + "${function:".len();
        let name = &rest[start..start + rest[start..].find('}').expect("}")];
        let (mut seen, mut fields) = (Vec::new(), Vec::new());
        request_fields(name, &mut seen, &mut fields);
        for field in fields {
            assert!(
                sent.contains(&field),
                "`{}` ({name}) reads `$Request.{field}`, which its request does not carry: {line}",
                request.op
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} reads found");
}
