//! Active Directory-based activation against a real Samba AD DC (the GSS-TSIG tests' domain,
//! with the LDAP service added): kmsconf binds with SASL GSSAPI and signing, reads the
//! activation objects the test seeds with `ldbadd` (placeholder values: test data only), and
//! `doctor` judges them; the LDAP client deletes exactly one object by DN as an administrator
//! and is refused as a plain user. Samba's LDAP port is 389 on 127.0.0.2 (Samba has no option
//! to move it), so these tests take turns.

use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::gss::Dc;

/// One DC with LDAP at a time: they all listen on 127.0.0.2:389.
static LDAP_PORT: Mutex<()> = Mutex::new(());

/// A test's turn at 127.0.0.2:389: the threads of this run take turns through [`LDAP_PORT`], and
/// two test runs on one machine (two clones, or a run beside CI) through a lock file in the
/// temporary directory, released when the turn ends.
struct Turn {
    _thread: MutexGuard<'static, ()>,
    _run: std::fs::File,
}

fn turn() -> Turn {
    let thread = LDAP_PORT.lock().unwrap_or_else(|e| e.into_inner());
    let path = std::env::temp_dir().join("kmsconf-e2e-127.0.0.2-389.lock");
    let run = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    run.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", path.display()));
    Turn {
        _thread: thread,
        _run: run,
    }
}

const CONTAINER: &str =
    "CN=Activation Objects,CN=Microsoft SPP,CN=Services,CN=Configuration,DC=corp,DC=example";

/// An activation object as test data: a name, a SKU GUID's bytes (base64) and a partial key.
fn seed(name: &str, sku_base64: &str, partial: &str) -> String {
    format!(
        "dn: CN={name},{CONTAINER}\nobjectClass: msSPP-ActivationObject\nmsSPP-CSVLKSkuId:: {sku_base64}\nmsSPP-CSVLKPid: 00000-00000-000-000000-00-0000-00000.0000-0000000\nmsSPP-CSVLKPartialProductKey: {partial}\nmsSPP-KMSIds:: AAECAwQFBgcICQoLDA0ODw==\n\n"
    )
}

const SKU_1: &str = "AAECAwQFBgcICQoLDA0ODw==";
const SKU_2: &str = "EBESExQVFhcYGRobHB0eHw==";

fn tool(name: &str, package: &str, args: &[&str], dir: &Path) {
    let out = Command::new(crate::dns::require(name, package))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes the activation object Windows' licensing service would create for `partial`
/// (`WS CSVLK`, [`SKU_1`]) straight into the DC's database, in that service's place.
fn create_object(dc: &Dc, p: &Project, partial: &str) {
    let created = p.path("created.ldif");
    std::fs::write(&created, seed("WS CSVLK", SKU_1, partial)).expect("ldif");
    let sam = dc.sam();
    tool(
        "ldbadd",
        "ldb-tools",
        &[
            "-H",
            sam.to_str().expect("path"),
            created.to_str().expect("path"),
        ],
        &p.path(""),
    );
}

/// A DC answering LDAP, with the forest's Activation Objects container (`forest_prep`, which
/// a new Samba forest lacks) and the objects of `ldif`.
fn start(forest_prep: bool, ldif: &str) -> Dc {
    let ldif = ldif.to_string();
    let dc = Dc::start_with(move |dir, conf| {
        let sam = dir.join("private/sam.ldb");
        let sam = sam.to_str().expect("path");
        if forest_prep {
            let args = [
                "domain",
                "functionalprep",
                "--forest-prep",
                "--function-level=2012_R2",
                "-H",
                sam,
            ];
            tool("samba-tool", "samba", &args, dir);
        }
        if !ldif.is_empty() {
            std::fs::write(dir.join("objects.ldif"), &ldif).expect("ldif");
            tool("ldbadd", "ldb-tools", &["-H", sam, "objects.ldif"], dir);
        }
        // kmsconf asks for `ldap/<server>`; the test reaches the DC by its address
        let spn = format!("ldap/{}", Dc::address());
        tool(
            "samba-tool",
            "samba",
            &["spn", "add", &spn, "DC1$", "-H", sam],
            dir,
        );
        conf.replace(
            "server services = kdc, dns",
            "server services = kdc, dns, ldap\n\ttls enabled = No",
        )
    });
    let start = Instant::now();
    while std::net::TcpStream::connect((Dc::address(), 389)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "LDAP did not answer"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    dc
}

fn project(dc: &Dc, cache: &str, exclusive: bool) -> Project {
    let config = format!(
        "[active_directory]\nserver = \"ldap://{}\"\nexclusive = {exclusive}\n\n[[active_directory.activation_objects]]\nname = \"WS CSVLK\"\nhost_key = {{ env = \"KMS_HOST_KEY\" }}\nvia = \"kms01\"\n\n[hosts.kms01]\ntarget = \"lab:lab/kms01.json\"\n",
        Dc::address()
    );
    let mut p = Project::new();
    p.write("kmsconf.toml", &config);
    p.env("KMS_HOST_KEY", WINDOWS_KEY);
    p.env("KRB5_CONFIG", &dc.krb5_conf().display().to_string());
    p.env("KRB5CCNAME", cache);
    p
}

/// The doctor line of `check`.
fn line<'a>(run: &'a Run, check: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| l.contains(check))
        .unwrap_or_else(|| panic!("no `{check}` line: {run:?}"))
}

#[test]
fn doctor_lists_the_objects_and_finds_the_duplicate_sku_and_the_undeclared_keys() {
    let _turn = turn();
    // WINDOWS_KEY ends `6789B`: the declared object; the other two are not declared, and the
    // first two share a SKU
    let ldif = seed("Declared AO", SKU_1, "6789B")
        + &seed("Old AO", SKU_1, "QRTVW")
        + &seed("Other AO", SKU_2, "HJKMP");
    let dc = start(true, &ldif);
    let admin = dc.kinit("Administrator", Dc::admin_password(), None);
    let p = project(&dc, &admin, false);
    p.ok(&["validate"], 0);
    let doctor = p.run(&["doctor"]);
    let container = line(&doctor, "adba-container");
    assert!(
        container.contains("ok")
            && container.contains("holds 3 activation objects")
            && container.contains("Administrator@CORP.EXAMPLE"),
        "{doctor:?}"
    );
    let duplicates = line(&doctor, "adba-duplicates");
    assert!(
        duplicates.contains("warning")
            && duplicates.contains("CN=Declared AO")
            && duplicates.contains("CN=Old AO")
            && !duplicates.contains("CN=Other AO"),
        "{doctor:?}"
    );
    let stale = line(&doctor, "adba-stale");
    assert!(
        stale.contains("warning")
            && stale.contains(&format!("`CN=Old AO,{CONTAINER}` (key ending QRTVW)"))
            && stale.contains("CN=Other AO")
            && !stale.contains("CN=Declared AO"),
        "{doctor:?}"
    );
    assert!(
        !doctor.all().contains(WINDOWS_KEY),
        "the key is never shown"
    );
}

#[test]
fn a_missing_container_and_a_bind_without_a_ticket_fail_naming_server_identity_and_dn() {
    let _turn = turn();
    let dc = start(false, "");
    let admin = dc.kinit("Administrator", Dc::admin_password(), None);
    let p = project(&dc, &admin, false);
    let doctor = p.run(&["doctor"]);
    let container = line(&doctor, "adba-container");
    assert!(
        container.contains("failed")
            && container.contains(&format!("LDAP server `{}:389`", Dc::address()))
            && container.contains("Administrator@CORP.EXAMPLE")
            && container.contains(&format!("the container `{CONTAINER}` does not exist")),
        "{doctor:?}"
    );
    assert!(doctor.stdout.contains("functionalprep"), "{doctor:?}");

    let empty = format!("FILE:{}/no-such-cache", p.path("").display());
    let p = project(&dc, &empty, false);
    let refused = p.run(&["doctor"]);
    let container = line(&refused, "adba-container");
    assert!(
        container.contains("failed")
            && container.contains(&format!("LDAP server `{}:389`", Dc::address()))
            && container.contains("no-such-cache"),
        "{refused:?}"
    );
}

/// Deletes `dn` with kmsconf's LDAP client as `cache`'s principal, in a child process of this
/// test binary (so the Kerberos environment, `KRB5_CONFIG` and `KRB5CCNAME`, is the child's
/// own); what the child printed.
fn delete_as(dc: &Dc, cache: &str, dn: &str) -> String {
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "adba::delete_in_child",
            "--nocapture",
        ])
        .env("KRB5_CONFIG", dc.krb5_conf())
        .env("KRB5CCNAME", cache)
        .env("ADBA_SERVER", Dc::address())
        .env("ADBA_DELETE_DN", dn)
        .output()
        .expect("run the child");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The child of [`delete_as`].
#[test]
#[ignore = "run by `delete_as` in a child process with its own Kerberos environment"]
fn delete_in_child() {
    let (Ok(server), Ok(dn)) = (
        std::env::var("ADBA_SERVER"),
        std::env::var("ADBA_DELETE_DN"),
    ) else {
        return;
    };
    let source = format!("[active_directory]\nserver = \"ldap://{server}\"\n");
    let config =
        kmsconf_model::config::Config::parse(Path::new("kmsconf.toml"), &source).expect("config");
    let ad = config.active_directory.expect("[active_directory]");
    let deleted = kmsconf_targets::ldap::Directory::open(&ad, None)
        .and_then(|d| d.delete(&dn, Duration::from_secs(30)));
    match deleted {
        Ok(()) => println!("ADBA-DELETED"),
        Err(e) => println!("ADBA-ERROR {e}"),
    }
}

#[test]
fn a_delete_by_dn_removes_exactly_that_object_and_a_plain_user_is_refused() {
    let _turn = turn();
    let ldif = seed("Declared AO", SKU_1, "6789B") + &seed("Old AO", SKU_2, "QRTVW");
    let dc = start(true, &ldif);
    let old = format!("CN=Old AO,{CONTAINER}");
    let bob = dc.kinit("bob", Dc::bob_password(), None);
    let refused = delete_as(&dc, &bob, &old);
    assert!(
        refused.contains("ADBA-ERROR")
            && refused.contains(&format!("LDAP server `{}:389`", Dc::address()))
            && refused.contains("bob@CORP.EXAMPLE")
            && refused.contains(&format!(
                "delete of `{old}` failed (insufficientAccessRights (50))"
            )),
        "{refused}"
    );
    let admin = dc.kinit("Administrator", Dc::admin_password(), None);
    let p = project(&dc, &admin, true);
    let before = p.run(&["doctor"]);
    assert!(
        line(&before, "adba-container").contains("holds 2"),
        "{before:?}"
    );

    let deleted = delete_as(&dc, &admin, &old);
    assert!(deleted.contains("ADBA-DELETED"), "{deleted}");
    let after = p.run(&["doctor"]);
    assert!(
        line(&after, "adba-container").contains("holds 1 activation object"),
        "{after:?}"
    );
    assert!(line(&after, "adba-stale").contains("ok"), "{after:?}");
    // the same DN again: gone, and said so
    let again = delete_as(&dc, &admin, &old);
    assert!(again.contains("noSuchObject (32)"), "{again}");
}

#[test]
fn plan_shows_the_missing_and_undeclared_objects_and_exclusive_apply_deletes_only_the_undeclared_one(
) {
    let _turn = turn();
    let ldif = seed("Declared AO", SKU_1, "6789B") + &seed("Old AO", SKU_2, "QRTVW");
    let dc = start(true, &ldif);
    let admin = dc.kinit("Administrator", Dc::admin_password(), None);
    let mut p = project(&dc, &admin, false);
    let second = "\n[[active_directory.activation_objects]]\nname = \"New AO\"\nhost_key = { env = \"KMS_HOST_KEY_2\" }\nvia = \"kms01\"\n";
    let config = p
        .read("kmsconf.toml")
        .replace("\n[hosts.kms01]", &format!("{second}\n[hosts.kms01]"));
    p.write("kmsconf.toml", &config);
    p.env("KMS_HOST_KEY_2", WINDOWS_KEY_2);
    let plan = p.ok(&["plan"], 0);
    assert!(
        plan.stdout
            .contains(&format!("`CN=Old AO,{CONTAINER}` (key ending QRTVW"))
            && plan.stdout.contains("left alone"),
        "{plan:?}"
    );
    let partial = &WINDOWS_KEY_2[WINDOWS_KEY_2.len() - 5..];
    assert!(
        plan.stdout.contains(&format!(
            "slmgr.vbs /ad-activation-online *****-*****-*****-*****-{partial} \"New AO\""
        )) && plan.stdout.contains("activation_objects/New AO"),
        "{plan:?}"
    );
    assert!(!plan.all().contains(WINDOWS_KEY_2) && !plan.all().contains(WINDOWS_KEY));

    let exclusive = p
        .read("kmsconf.toml")
        .replace("exclusive = false", "exclusive = true");
    p.write("kmsconf.toml", &exclusive);
    let plan = p.ok(&["plan"], 0);
    assert!(
        plan.stdout.contains("activation_objects/Old AO")
            && plan
                .stdout
                .contains(&format!("slmgr.vbs /del-ao \"CN=Old AO,{CONTAINER}\"")),
        "{plan:?}"
    );
    let applied = p.ok(&["apply", "--auto-approve"], 0);
    assert!(applied.stdout.contains("deleted"), "{applied:?}");
    let doctor = p.run(&["doctor"]);
    assert!(
        line(&doctor, "adba-container").contains("holds 1 activation object"),
        "{doctor:?}"
    );
    let again = p.ok(&["plan"], 0);
    assert!(
        !again.stdout.contains("activation_objects/Old AO"),
        "{again:?}"
    );
}

#[test]
fn a_missing_object_is_created_through_its_via_host_and_the_next_plan_is_clean() {
    let _turn = turn();
    let dc = start(true, "");
    let admin = dc.kinit("Administrator", Dc::admin_password(), None);
    let p = project(&dc, &admin, false);
    let partial = &WINDOWS_KEY[WINDOWS_KEY.len() - 5..];
    let plan = p.ok(&["plan", "--out", "plan.json"], 0);
    let create =
        format!("slmgr.vbs /ad-activation-online *****-*****-*****-*****-{partial} \"WS CSVLK\"");
    assert!(
        plan.stdout.contains(&create) && plan.stdout.contains("activation_objects/WS CSVLK"),
        "{plan:?}"
    );
    let saved = p.read("plan.json");
    let json: serde_json::Value = serde_json::from_str(&saved).expect("plan file");
    let kms01 = json["hosts"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["name"] == "kms01"))
        .unwrap_or_else(|| panic!("no kms01 entry: {saved}"));
    let change = &kms01["changes"][0];
    assert_eq!(
        change["operation"]["op"], "create_activation_object",
        "{saved}"
    );
    assert_eq!(change["operation"]["partial"], partial, "{saved}");
    assert_eq!(
        change["operation"]["key"]["source"]["env"], "KMS_HOST_KEY",
        "a reference, not the key: {saved}"
    );
    assert!(!saved.contains(WINDOWS_KEY) && !plan.all().contains(WINDOWS_KEY));

    let applied = p.ok(&["apply", "plan.json", "--auto-approve"], 0);
    assert!(
        applied.stdout.contains("WS CSVLK") && !applied.all().contains(WINDOWS_KEY),
        "{applied:?}"
    );
    let lab = p.read("lab/kms01.json");
    let lab: serde_json::Value = serde_json::from_str(&lab).expect("lab file");
    assert_eq!(
        lab["ad_activations"],
        serde_json::json!([{
            "method": "SoftwareLicensingService.DoActiveDirectoryOnlineActivation",
            "name": "WS CSVLK",
            "partial_key": partial,
        }]),
        "{lab}"
    );
    assert!(!lab.to_string().contains(WINDOWS_KEY));

    // the lab writes nothing to the directory: Windows' licensing service would have created
    // the object, which the test seeds in its place
    let doctor = p.run(&["doctor"]);
    assert!(
        line(&doctor, "adba-container").contains("holds 0 activation objects"),
        "{doctor:?}"
    );
    create_object(&dc, &p, partial);
    let again = p.ok(&["plan"], 0);
    assert!(
        !again.stdout.contains("/ad-activation-online")
            && !again.stdout.contains("activation_objects/"),
        "{again:?}"
    );

    // `status` lists the objects, each with the declared object it is for
    let status = p.ok(&["status"], 0);
    assert!(
        status.stdout.contains("directory active_directory")
            && status.stdout.contains("bound as Administrator@CORP.EXAMPLE")
            && status.stdout.contains("1 activation object in")
            && status
                .stdout
                .contains(&format!("WS CSVLK  key ending {partial}  SKU 03020100-0504-0706-0809-0a0b0c0d0e0f  declared as `WS CSVLK`")),
        "{status:?}"
    );
    let json = crate::schemas::valid("status", &p.ok(&["status", "--json"], 0));
    let ad = &json["active_directory"];
    assert_eq!(ad["container"], true, "{json:#}");
    assert_eq!(ad["objects"][0]["declared_as"], "WS CSVLK", "{json:#}");
    assert_eq!(ad["objects"][0]["partial_key"], partial, "{json:#}");
    assert!(!status.all().contains(WINDOWS_KEY));
    // only the host: no directory
    let only = crate::schemas::valid("status", &p.ok(&["status", "--json", "--host", "kms01"], 0));
    assert!(only.get("active_directory").is_none(), "{only:#}");
}

#[test]
fn status_says_when_the_directory_cannot_be_read_and_exits_1() {
    let _turn = turn();
    let dc = start(true, &seed("Old AO", SKU_2, "QRTVW"));
    let p = project(&dc, "FILE:/nonexistent/no-such-cache", false);
    let status = p.ok(&["status"], 1);
    assert!(
        status.stdout.contains("directory active_directory")
            && status.stdout.contains("cannot read:")
            && status.stdout.contains("no-such-cache"),
        "{status:?}"
    );
    let json = crate::schemas::valid("status", &p.ok(&["status", "--json"], 1));
    assert!(json["active_directory"]["error"].is_object(), "{json:#}");
    let admin = dc.kinit("Administrator", Dc::admin_password(), None);
    let p = project(&dc, &admin, false);
    let status = p.ok(&["status"], 0);
    assert!(
        status.stdout.contains("Old AO  key ending QRTVW") && status.stdout.contains("undeclared"),
        "{status:?}"
    );
}

/// `project` with its object activated by phone, the confirmation ID read from `KMS_CID`.
fn phone_project(dc: &Dc, cache: &str) -> Project {
    let p = project(dc, cache, false);
    let config = p.read("kmsconf.toml").replace(
        "via = \"kms01\"\n",
        "via = \"kms01\"\nactivation = \"phone\"\nconfirmation_id = { env = \"KMS_CID\" }\n",
    );
    p.write("kmsconf.toml", &config);
    p
}

/// Without a confirmation ID the object is pending: the plan shows the forest's installation ID
/// its `via` host generated (no secret) and the slmgr.vbs steps with the key masked, apply shows
/// it again and creates nothing, and an empty confirmation-ID file is "not phoned yet" too.
#[test]
fn a_missing_phone_object_is_pending_with_the_installation_id_from_its_via_host() {
    let _turn = turn();
    let dc = start(true, "");
    let admin = dc.kinit("Administrator", Dc::admin_password(), None);
    let p = phone_project(&dc, &admin);
    let partial = &WINDOWS_KEY[WINDOWS_KEY.len() - 5..];
    let plan = p.ok(&["plan", "--detailed-exitcode", "--out", "plan.json"], 2);
    snapshot_run("adba-phone-pending-plan", &p, &plan);
    let iid = installation_id(&plan.stdout);
    assert!(
        plan.stdout.contains(&format!(
            "slmgr.vbs /ad-activation-get-iid *****-*****-*****-*****-{partial}"
        )) && plan.stdout.contains("activation_objects/WS CSVLK")
            && plan.stdout.contains(
                "phone activation pending: call the activation line with installation ID"
            )
            && plan.stdout.contains("env `KMS_CID`")
            && !plan.stdout.contains("does not support"),
        "{plan:?}"
    );
    let saved = p.read("plan.json");
    assert!(!saved.contains(WINDOWS_KEY) && !plan.all().contains(WINDOWS_KEY));
    assert!(
        saved.contains("show_activation_object_installation_id"),
        "{saved}"
    );

    // the machine and review forms carry the same: the installation ID, never a secret
    let json = crate::schemas::valid("plan", &p.ok(&["plan", "--json"], 0));
    assert!(json.to_string().contains(&iid), "{json:#}");
    let md = p.ok(&["plan", "--format", "markdown"], 0);
    assert!(
        md.stdout
            .contains("pending phone activation (activation object `WS CSVLK`)")
            && md.stdout.contains(&iid),
        "{md:?}"
    );
    assert!(!json.to_string().contains(WINDOWS_KEY) && !md.all().contains(WINDOWS_KEY));

    let applied = p.ok(&["apply", "plan.json", "--auto-approve"], 0);
    snapshot_run("adba-phone-pending-apply", &p, &applied);
    assert!(
        applied.stdout.contains("pending")
            && applied.stdout.contains(&format!(
                "installation ID for activation object `WS CSVLK`: {iid}"
            )),
        "{applied:?}"
    );
    assert!(!applied.all().contains(WINDOWS_KEY));
    let lab = p.read("lab/kms01.json");
    assert!(
        !lab.contains("ad_activations") && !lab.contains(WINDOWS_KEY),
        "{lab}"
    );

    // an empty file is "not phoned yet", as an unset variable is; the same installation ID
    p.write("cid.txt", "");
    let config = p
        .read("kmsconf.toml")
        .replace("{ env = \"KMS_CID\" }", "{ file = \"cid.txt\" }");
    p.write("kmsconf.toml", &config);
    let again = p.ok(&["plan", "--detailed-exitcode"], 2);
    assert_eq!(installation_id(&again.stdout), iid, "{again:?}");
    assert!(again.stdout.contains("cid.txt`"), "{again:?}");
}

/// Runs `kmsconf lab agent` on `lab` with the agent line and `request`; its answer to it.
fn lab_agent(lab: &Path, request: &str) -> (String, serde_json::Value) {
    use base64::Engine as _;
    use std::io::Write;
    let engine = base64::engine::general_purpose::STANDARD;
    let agent = engine.encode(kmsconf_targets::powershell::agent_script());
    let mut child = Command::new(env!("CARGO_BIN_EXE_kmsconf"))
        .args(["lab", "agent"])
        .arg(lab)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("lab agent");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{agent}\n{request}\n").as_bytes())
        .expect("request");
    let out = child.wait_with_output().expect("lab agent");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let answer = stdout
        .lines()
        .find_map(|l| l.strip_prefix("KMSCONF:result:"))
        .and_then(|a| engine.decode(a).ok())
        .and_then(|a| serde_json::from_slice(&a).ok())
        .unwrap_or_else(|| panic!("no result: {stdout}"));
    (stdout, answer)
}

/// The Windows path's stand-in: `kmsconf lab agent` answers the agent's `ad_activation_online`
/// request and records the WMI call in its lab file, the key's last five characters only; a
/// malformed key is refused before anything is recorded.
#[test]
fn the_lab_agent_records_the_ad_activation_call() {
    let p = Project::new();
    let lab = p.path("kms01.json");
    let request = format!(
        "{{\"id\":1,\"op\":\"ad_activation_online\",\"key\":\"{WINDOWS_KEY}\",\"object_name\":\"WS CSVLK\"}}"
    );
    let (stdout, answer) = lab_agent(&lab, &request);
    assert_eq!(answer["Ok"], true, "{answer}");
    assert!(!stdout.contains(WINDOWS_KEY), "{stdout}");
    let text = std::fs::read_to_string(&lab).expect("lab file");
    assert!(!text.contains(WINDOWS_KEY), "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).expect("lab file");
    let partial = &WINDOWS_KEY[WINDOWS_KEY.len() - 5..];
    assert_eq!(json["ad_activations"][0]["name"], "WS CSVLK", "{text}");
    assert_eq!(json["ad_activations"][0]["partial_key"], partial, "{text}");

    let bad = "{\"id\":1,\"op\":\"ad_activation_online\",\"key\":\"nope\",\"object_name\":\"X\"}";
    let (_, answer) = lab_agent(&lab, bad);
    assert_eq!(answer["Ok"], false, "{answer}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&lab).expect("lab")).expect("lab");
    assert_eq!(json["ad_activations"].as_array().map(Vec::len), Some(1));
}

// Finding the domain controller from DNS when `[active_directory]` names no `server`: the
// `_ldap._tcp.dc._msdcs.corp.example` SRV records the test DC's own DNS serves (Samba registers
// them), asked of it through `[dns] server`.

const DC_SRV: &str = "_ldap._tcp.dc._msdcs.corp.example";

/// Changes the service principal names of `account` in the running DC's directory (`add` or
/// `delete`), as `samba-tool spn` does.
fn spn(dc: &Dc, action: &str, name: &str, account: &str) {
    let sam = dc.sam();
    let dir = sam.parent().expect("private dir");
    let sam = sam.to_str().expect("path");
    tool(
        "samba-tool",
        "samba",
        &["spn", action, name, account, "-H", sam],
        dir,
    );
}

/// [`start`], with the service principal a Windows DC registers for its LDAP service,
/// `ldap/<its DNS name>` (the test DC's account has only the `HOST/` names provisioning gives
/// it, and its KDC does not map `ldap/` to them: "Server not found in Kerberos database").
fn start_located(ldif: &str) -> Dc {
    let dc = start(true, ldif);
    spn(&dc, "add", "ldap/dc1.corp.example", "DC1$");
    dc
}

/// [`project`] without `server`, with the DC's DNS server as `[dns] server`.
fn located_project(dc: &Dc, cache: &str) -> Project {
    let p = project(dc, cache, false);
    let config = p
        .read("kmsconf.toml")
        .replace(&format!("server = \"ldap://{}\"\n", Dc::address()), "")
        + &format!(
            "\n[dns]\nserver = \"{}\"\nzones = [\"corp.example\"]\ninsecure_updates = true\n",
            dc.server()
        );
    p.write("kmsconf.toml", &config);
    p
}

/// The service principals `cache` holds tickets for.
fn tickets(dc: &Dc, cache: &str) -> String {
    let out = Command::new(crate::dns::require("klist", "krb5-user"))
        .env("KRB5_CONFIG", dc.krb5_conf())
        .env("KRB5CCNAME", cache)
        .output()
        .expect("klist");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn without_a_server_the_dc_is_found_by_its_srv_records_and_named_in_doctor_status_and_plan() {
    let _turn = turn();
    let dc = start_located(&seed("Declared AO", SKU_1, "6789B"));
    assert!(
        dc.dig(DC_SRV, "SRV")
            .iter()
            .any(|r| r.ends_with("389 dc1.corp.example.")),
        "Samba serves its DC's SRV record"
    );
    let admin = dc.kinit("Administrator", Dc::admin_password(), None);
    let p = located_project(&dc, &admin);
    p.ok(&["validate"], 0);
    let found = format!(
        "found by the `{DC_SRV}` SRV records on DNS server `{}`",
        dc.server()
    );
    let doctor = p.run(&["doctor"]);
    let container = line(&doctor, "adba-container");
    assert!(
        container.contains("ok")
            && container.contains(&format!(
                "LDAP server `dc1.corp.example:389` ({found}, bound as `Administrator@CORP.EXAMPLE`)"
            ))
            && container.contains("holds 1 activation object"),
        "{doctor:?}"
    );
    // the service principal is the SRV target's name, not its address
    let held = tickets(&dc, &admin);
    assert!(
        held.contains("ldap/dc1.corp.example@CORP.EXAMPLE") && !held.contains("ldap/127.0.0.2"),
        "{held}"
    );

    let status = p.ok(&["status"], 0);
    assert!(
        status.stdout.contains(&format!(
            "directory active_directory (ldap://dc1.corp.example:389, {found}): bound as Administrator@CORP.EXAMPLE"
        )) && status.stdout.contains("Declared AO  key ending 6789B"),
        "{status:?}"
    );
    let json = crate::schemas::valid("status", &p.ok(&["status", "--json"], 0));
    let ad = &json["active_directory"];
    assert_eq!(ad["server"], "dc1.corp.example:389", "{json:#}");
    assert_eq!(ad["found_by"]["srv_name"], DC_SRV, "{json:#}");
    assert_eq!(
        ad["found_by"]["dns_server"],
        dc.server().as_str(),
        "{json:#}"
    );

    let plan = p.ok(&["plan"], 0);
    assert!(
        plan.stdout
            .contains(&format!("LDAP server `dc1.corp.example:389` was {found}")),
        "{plan:?}"
    );
    assert!(!plan.all().contains(WINDOWS_KEY));
}

#[test]
fn without_a_server_and_without_an_srv_record_the_error_names_the_record_and_the_dns_server() {
    let _turn = turn();
    let dc = start(true, "");
    let admin = dc.kinit("Administrator", Dc::admin_password(), None);
    dc.nsupdate_zone(
        &admin,
        "_msdcs.corp.example",
        &format!("update delete {DC_SRV} SRV"),
    );
    assert!(dc.dig(DC_SRV, "SRV").is_empty(), "the record is gone");
    let p = located_project(&dc, &admin);
    let said = format!(
        "no domain controller for `Administrator@CORP.EXAMPLE`: no `{DC_SRV}` SRV record on {}: set `server = \"ldap://…\"`",
        dc.server()
    );
    let doctor = p.run(&["doctor"]);
    let container = line(&doctor, "adba-container");
    assert!(
        container.contains("failed") && container.contains(&said),
        "{doctor:?}"
    );
    assert!(
        doctor
            .stdout
            .contains("fix: check the domain's `_ldap._tcp.dc._msdcs` SRV records"),
        "{doctor:?}"
    );
    let status = p.ok(&["status"], 1);
    assert!(status.stdout.contains(&said), "{status:?}");
    let plan = p.run(&["plan"]);
    assert!(plan.code != 0 && plan.all().contains(&said), "{plan:?}");
}

#[test]
fn a_dead_first_srv_target_is_logged_and_skipped_for_the_next_one() {
    let _turn = turn();
    let dc = start_located("");
    let admin = dc.kinit("Administrator", Dc::admin_password(), None);
    // heavier than dc1's record (weight 100), so tried first; nothing listens on its port
    let dead = crate::dns::free_port_on(Dc::address());
    dc.nsupdate_zone(
        &admin,
        "_msdcs.corp.example",
        &format!("update add {DC_SRV} 600 SRV 0 200 {dead} gone.corp.example"),
    );
    dc.nsupdate(
        &admin,
        &format!("update add gone.corp.example 600 A {}", Dc::address()),
    );
    assert_eq!(dc.dig(DC_SRV, "SRV").len(), 2, "both records are served");
    let mut p = located_project(&dc, &admin);
    p.env("KMSCONF_LOG", "kmsconf_targets=debug");
    let doctor = p.run(&["doctor"]);
    assert!(
        line(&doctor, "adba-container").contains("ok")
            && line(&doctor, "adba-container").contains("LDAP server `dc1.corp.example:389`"),
        "{doctor:?}"
    );
    let skipped = doctor
        .stderr
        .lines()
        .find(|l| l.contains("domain controller failed; trying the next one"))
        .unwrap_or_else(|| panic!("no debug line for the dead DC: {doctor:?}"));
    assert!(
        skipped.contains(&format!("gone.corp.example:{dead}"))
            && skipped.contains("cannot connect"),
        "{skipped}"
    );
}

/// A refusal from the DC itself, not a missing ticket: the service principal kmsconf asks for,
/// `ldap/127.0.0.2`, belongs to another account (a duplicate or misplaced SPN), so the KDC
/// issues a ticket the DC cannot read, and Samba answers the bind with `invalidCredentials`.
#[test]
fn a_bind_the_dc_refuses_fails_naming_server_identity_and_result_code() {
    let _turn = turn();
    let dc = start(true, &seed("Old AO", SKU_2, "QRTVW"));
    spn(&dc, "delete", &format!("ldap/{}", Dc::address()), "DC1$");
    spn(&dc, "add", &format!("ldap/{}", Dc::address()), "bob");
    let admin = dc.kinit("Administrator", Dc::admin_password(), None);
    let p = project(&dc, &admin, true);
    let refused = format!(
        "LDAP server `{}:389` (bound as `Administrator@CORP.EXAMPLE`): the SASL GSSAPI bind was refused (invalidCredentials (49))",
        Dc::address()
    );
    let doctor = p.run(&["doctor"]);
    let container = line(&doctor, "adba-container");
    assert!(
        container.contains("failed") && container.contains(&refused),
        "{doctor:?}"
    );
    let status = p.ok(&["status"], 1);
    assert!(status.stdout.contains(&refused), "{status:?}");
    let json = crate::schemas::valid("status", &p.ok(&["status", "--json"], 1));
    let error = &json["active_directory"]["error"];
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains(&refused)),
        "{json:#}"
    );
    // an exclusive plan cannot read the directory, so it deletes nothing
    let plan = p.run(&["plan"]);
    assert!(
        plan.code != 0 && plan.all().contains(&refused) && !plan.stdout.contains("/del-ao"),
        "{plan:?}"
    );
}

/// A saved plan of a directory found in DNS records that it is found so, not which DC
/// answered: `apply` finds one again and deletes the planned object by its DN.
#[test]
fn a_saved_plan_without_a_server_finds_the_dc_again_when_applied() {
    let _turn = turn();
    let ldif = seed("Declared AO", SKU_1, "6789B") + &seed("Old AO", SKU_2, "QRTVW");
    let dc = start_located(&ldif);
    let admin = dc.kinit("Administrator", Dc::admin_password(), None);
    let p = located_project(&dc, &admin);
    let exclusive = p
        .read("kmsconf.toml")
        .replace("exclusive = false", "exclusive = true");
    p.write("kmsconf.toml", &exclusive);
    let plan = p.ok(&["plan", "--out", "plan.json"], 0);
    assert!(
        plan.stdout
            .contains(&format!("slmgr.vbs /del-ao \"CN=Old AO,{CONTAINER}\"")),
        "{plan:?}"
    );
    let saved: serde_json::Value = serde_json::from_str(&p.read("plan.json")).expect("plan file");
    let entry = saved["hosts"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["name"] == "active_directory"))
        .unwrap_or_else(|| panic!("no directory entry: {saved:#}"));
    assert!(
        entry
            .to_string()
            .contains(&format!("\"dns\":\"{}\"", dc.server()))
            && entry["observed"].to_string().contains(DC_SRV),
        "{entry:#}"
    );
    let applied = p.ok(&["apply", "plan.json", "--auto-approve"], 0);
    assert!(applied.stdout.contains("deleted"), "{applied:?}");
    let doctor = p.run(&["doctor"]);
    assert!(
        line(&doctor, "adba-container").contains("holds 1 activation object"),
        "{doctor:?}"
    );
}

/// Phone activation end to end: the activation line's confirmation ID for the plan's
/// installation ID is deposited through the `via` host's agent (the lab records the call with
/// that installation ID); a confirmation ID of another installation ID is refused with the real
/// error and records nothing; the plan file holds only references; once the object exists (the
/// test seeds it in Windows' place) the next plan is clean. Neither the key nor the
/// confirmation ID appears in any output, plan file or lab file.
#[test]
fn a_phone_object_is_created_from_its_confirmation_id_and_the_next_plan_is_clean() {
    let _turn = turn();
    let dc = start(true, "");
    let admin = dc.kinit("Administrator", Dc::admin_password(), None);
    let mut p = phone_project(&dc, &admin);
    let partial = &WINDOWS_KEY[WINDOWS_KEY.len() - 5..];
    let pending = p.ok(&["plan"], 0);
    let iid = installation_id(&pending.stdout);
    let mut seen = pending.all();

    // well formed, every group's check digit right, but another installation ID's
    let wrong = "123450-".repeat(7) + "123450";
    p.env("KMS_CID", &wrong);
    let refused = p.ok(&["apply", "--auto-approve"], 1);
    snapshot_run("adba-phone-wrong-confirmation-id", &p, &refused);
    assert!(
        refused.stdout.contains("failed")
            && refused.stdout.contains("0xC004F031")
            && refused
                .stdout
                .contains(&format!("does not belong to installation ID {iid}")),
        "{refused:?}"
    );
    assert!(!refused.all().contains(&wrong) && !refused.all().contains(&wrong.replace('-', "")));
    assert!(!p.read("lab/kms01.json").contains("ad_activations"));
    // a mistyped digit fails its group's check digit
    let cid = p
        .ok(&["lab", "confirmation-id", &iid], 0)
        .stdout
        .trim()
        .to_string();
    let mut typo = cid.clone().into_bytes();
    typo[0] = if typo[0] == b'9' { b'8' } else { typo[0] + 1 };
    p.env("KMS_CID", &String::from_utf8(typo).expect("ascii"));
    let typo = p.ok(&["apply", "--auto-approve"], 1);
    assert!(typo.stdout.contains("0xC004F04D"), "{typo:?}");
    seen += &typo.all();

    p.env("KMS_CID", &cid);
    let plan = p.ok(&["plan", "--out", "plan.json"], 0);
    snapshot_run("adba-phone-confirmation-id-plan", &p, &plan);
    assert!(
        plan.stdout.contains(&format!(
            "slmgr.vbs /ad-activation-apply-cid *****-*****-*****-*****-{partial} <confirmation ID> \"WS CSVLK\""
        )) && plan.stdout.contains("created from the confirmation ID in env `KMS_CID`"),
        "{plan:?}"
    );
    let saved = p.read("plan.json");
    let json: serde_json::Value = serde_json::from_str(&saved).expect("plan file");
    let change = json["hosts"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["name"] == "kms01"))
        .map(|h| h["changes"][0]["operation"].clone())
        .unwrap_or_else(|| panic!("no kms01 entry: {saved}"));
    assert_eq!(change["op"], "create_activation_object_by_phone", "{saved}");
    assert_eq!(change["partial"], partial, "{saved}");
    assert_eq!(change["key"]["source"]["env"], "KMS_HOST_KEY", "{saved}");
    assert_eq!(
        change["confirmation_id"]["source"]["env"], "KMS_CID",
        "{saved}"
    );

    let applied = p.ok(&["apply", "plan.json", "--auto-approve"], 0);
    assert!(
        applied.stdout.contains("applied")
            && applied.stdout.contains("`WS CSVLK` requested by phone"),
        "{applied:?}"
    );
    let lab_text = p.read("lab/kms01.json");
    let lab: serde_json::Value = serde_json::from_str(&lab_text).expect("lab file");
    assert_eq!(
        lab["ad_activations"],
        serde_json::json!([{
            "method": "SoftwareLicensingService.DepositActiveDirectoryOfflineActivationConfirmation",
            "name": "WS CSVLK",
            "partial_key": partial,
            "installation_id": iid,
        }]),
        "{lab}"
    );

    // Windows' licensing service would have created the object: the test seeds it
    create_object(&dc, &p, partial);
    let clean = p.ok(&["plan", "--detailed-exitcode"], 0);
    assert!(!clean.stdout.contains("activation_objects/"), "{clean:?}");

    for text in [
        seen,
        refused.all(),
        plan.all(),
        applied.all(),
        clean.all(),
        saved,
        lab_text,
    ] {
        for secret in [
            WINDOWS_KEY.to_string(),
            cid.clone(),
            cid.replace('-', ""),
            wrong.replace('-', ""),
        ] {
            assert!(!text.contains(&secret), "a secret in:\n{text}");
        }
    }
}

/// The `via` host's `powershell.exe` on the test sshd: the lab agent on one lab file.
const STAND_IN: &str = r#"#!/bin/sh
exec "$KMSCONF_BIN" lab agent "$(dirname "$0")/../lab/kms01.json"
"#;

/// A recorded session of a phone object's `via` host replays with the same output: the plan's
/// installation ID request (the key recorded as its `[active_directory]` reference, never its
/// value) and the apply that deposits a confirmation ID (recorded the same way).
#[test]
fn a_recorded_phone_activation_replays_with_the_same_output_and_no_secret() {
    let _turn = turn();
    let dc = start(true, "");
    let admin = dc.kinit("Administrator", Dc::admin_password(), None);
    let s =
        crate::ssh::sshd::Server::start_with_env(&[("KMSCONF_BIN", env!("CARGO_BIN_EXE_kmsconf"))]);
    s.powershell(STAND_IN);
    let mut p = phone_project(&dc, &admin);
    let ssh = format!("ssh://{}@127.0.0.1:{}", crate::ssh::sshd::user(), s.port);
    let lab_config = p.read("kmsconf.toml");
    let real = lab_config.replace("lab:lab/kms01.json", &ssh);
    p.write("kmsconf.toml", &real);
    p.env(
        "KMSCONF_SSH",
        &format!("ssh -F {}", s.path("ssh_config").display()),
    );
    p.env("KMSCONF_TIMEOUT", "60");
    let record_and_replay = |p: &mut Project, name: &str, args: &[&str]| {
        p.env("KMSCONF_RECORD", &p.path(name).display().to_string());
        let recorded = p.run(args);
        p.unset("KMSCONF_RECORD");
        let replay = format!("replay:{name}/kms01.jsonl");
        p.write("kmsconf.toml", &real.replace(&ssh, &replay));
        let replayed = p.run(args);
        p.write("kmsconf.toml", &real);
        assert_eq!(
            replayed.shown(p).replace(&replay, "[TARGET]"),
            recorded.shown(p).replace(&ssh, "[TARGET]"),
            "kmsconf {}: the replay prints what the recorded run printed",
            args.join(" ")
        );
        (recorded, p.read(&format!("{name}/kms01.jsonl")))
    };
    let (plan, planned) = record_and_replay(&mut p, "plan", &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan:?}");
    let iid = installation_id(&plan.stdout);
    assert!(
        planned.contains(r#"\"op\":\"ad_activation_get_iid\""#)
            && planned.contains(
                r#"{\"secret\":\"active_directory.activation_objects.WS CSVLK.host_key\"}"#
            ),
        "{planned}"
    );
    let cid = p
        .ok(&["lab", "confirmation-id", &iid], 0)
        .stdout
        .trim()
        .to_string();
    p.env("KMS_CID", &cid);
    let (applied, recorded) = record_and_replay(&mut p, "apply", &["apply", "--auto-approve"]);
    assert_eq!(applied.code, 0, "{applied:?}");
    assert!(
        recorded.contains(r#"\"op\":\"ad_activation_apply_cid\""#)
            && recorded.contains(
                r#"{\"secret\":\"active_directory.activation_objects.WS CSVLK.confirmation_id\"}"#
            ),
        "{recorded}"
    );
    for text in [planned, recorded, plan.all(), applied.all()] {
        for secret in [WINDOWS_KEY, "HJKMP-QRTVW", &cid, &cid.replace('-', "")] {
            assert!(!text.contains(secret), "a secret in:\n{text}");
        }
    }
}

/// A declared object the directory lacks: `status` lists it with its `via` host and what creates
/// it (for a phone object, pending until its confirmation ID is at hand, which is said but never
/// shown), in the table and in `--json` its schema accepts; `doctor` warns under `adba-missing`,
/// naming it, its `via` host and the next step. Once the object exists, both are quiet.
#[test]
fn status_and_doctor_name_a_missing_object_and_a_pending_phone_activation() {
    let _turn = turn();
    let dc = start(true, "");
    let admin = dc.kinit("Administrator", Dc::admin_password(), None);
    let partial = &WINDOWS_KEY[WINDOWS_KEY.len() - 5..];

    // online: `kmsconf apply` creates it through kms01
    let p = project(&dc, &admin, false);
    let status = p.ok(&["status"], 0);
    assert!(
        status.stdout.contains(&format!(
            "WS CSVLK  key ending {partial}  via kms01  missing: `kmsconf apply` creates it through host `kms01`"
        )),
        "{status:?}"
    );
    let doctor = p.run(&["doctor"]);
    let missing = line(&doctor, "adba-missing");
    assert!(
        missing.contains("warning")
            && missing.contains(&format!(
                "activation object `WS CSVLK` (key ending {partial}, via host `kms01`) does not exist in `{CONTAINER}`"
            )),
        "{doctor:?}"
    );
    assert!(
        doctor
            .stdout
            .contains("fix: `kmsconf apply` creates it through host `kms01`"),
        "{doctor:?}"
    );

    // by phone, no confirmation ID yet: pending, the installation ID comes from `kmsconf plan`
    let mut p = phone_project(&dc, &admin);
    let status = p.ok(&["status"], 0);
    // the directory's block (the lab host's block above it has a client machine ID of its own)
    let block = status
        .stdout
        .find("directory active_directory")
        .map_or("", |at| &status.stdout[at..]);
    snapshot("adba-status-pending-phone", block);
    assert!(
        status.stdout.contains(&format!(
            "WS CSVLK  key ending {partial}  via kms01  missing: phone activation pending (no confirmation ID yet): get the installation ID with `kmsconf plan` (host `kms01` generates it), call the activation line with it, then put the confirmation ID in env `KMS_CID` and run `kmsconf apply`"
        )),
        "{status:?}"
    );
    let json = crate::schemas::valid("status", &p.ok(&["status", "--json"], 0));
    let pending = &json["active_directory"]["missing"][0];
    assert_eq!(pending["name"], "WS CSVLK", "{json:#}");
    assert_eq!(pending["via"], "kms01", "{json:#}");
    assert_eq!(pending["partial_key"], partial, "{json:#}");
    assert_eq!(pending["activation"], "phone", "{json:#}");
    assert_eq!(pending["confirmation_id_available"], false, "{json:#}");
    let doctor = p.run(&["doctor"]);
    let missing = line(&doctor, "adba-missing");
    assert!(
        missing.contains("warning")
            && missing.contains("`WS CSVLK`")
            && missing
                .contains("via host `kms01`, activated by phone: pending, no confirmation ID yet"),
        "{doctor:?}"
    );
    assert!(
        doctor.stdout.contains(
            "fix: get the installation ID with `kmsconf plan` (host `kms01` generates it)"
        ) && doctor.stdout.contains("env `KMS_CID`"),
        "{doctor:?}"
    );

    // a confirmation ID at hand: said, never shown
    let cid = "123450-".repeat(7) + "123450";
    p.env("KMS_CID", &cid);
    let json = crate::schemas::valid("status", &p.ok(&["status", "--json"], 0));
    assert_eq!(
        json["active_directory"]["missing"][0]["confirmation_id_available"], true,
        "{json:#}"
    );
    let status = p.ok(&["status"], 0);
    assert!(
        status
            .stdout
            .contains("missing: phone activation (confirmation ID available): `kmsconf apply` creates it through host `kms01` from the confirmation ID in env `KMS_CID`"),
        "{status:?}"
    );
    let doctor = p.run(&["doctor"]);
    for run in [&status, &doctor] {
        assert!(
            !run.all().contains(&cid) && !run.all().contains(WINDOWS_KEY),
            "{run:?}"
        );
    }
    assert!(!json.to_string().contains(&cid));

    // once the object exists (seeded in the licensing service's place), nothing is missing
    create_object(&dc, &p, partial);
    let json = crate::schemas::valid("status", &p.ok(&["status", "--json"], 0));
    assert_eq!(
        json["active_directory"]["missing"],
        serde_json::json!([]),
        "{json:#}"
    );
    let doctor = p.run(&["doctor"]);
    assert!(
        line(&doctor, "adba-missing").contains("every declared activation object exists"),
        "{doctor:?}"
    );
}
