//! The lab host's unit tests: each simulated operation and control, round trips, locks.

use super::operations::{
    SL_E_CIDIID_INVALID_CHECK_DIGITS, SL_E_CIDIID_MISMATCHED, SL_E_INVALID_PRODUCT_KEY,
    SL_E_NETWORK,
};
use super::*;
use kmsconf_engine::secret::Secret;
use kmsconf_model::keys::{ConfirmationId, ProductKey};
use kmsconf_model::ops::ServiceSetting;

const KEY: &str = "BCDFG-HJKMP-QRTVW-XY234-6789B";

fn lab() -> (tempfile::TempDir, LabTarget) {
    let dir = tempfile::tempdir().expect("tmp");
    let t = LabTarget::new(
        "kms01",
        dir.path().join("kms01.json"),
        Duration::from_secs(600),
    );
    (dir, t)
}

fn key() -> ProductKey {
    ProductKey::parse(&Secret::new(KEY)).expect("key")
}

/// Every HRESULT the lab answers is a row of the facts table marked `lab = true`, and so
/// in the error catalogue.
#[test]
fn every_code_the_lab_returns_is_in_the_facts_table() {
    use super::operations::{
        E_FILE_NOT_FOUND, E_INVALIDARG, SL_E_NO_KMS_CONTACTED, SL_E_PKEY_NOT_INSTALLED,
    };
    for code in [
        E_FILE_NOT_FOUND,
        E_INVALIDARG,
        SL_E_PKEY_NOT_INSTALLED,
        SL_E_INVALID_PRODUCT_KEY,
        SL_E_CIDIID_MISMATCHED,
        SL_E_CIDIID_INVALID_CHECK_DIGITS,
        SL_E_NO_KMS_CONTACTED,
        SL_E_NETWORK,
    ] {
        let row = kmsconf_model::facts::facts().hresult(code);
        assert!(
            row.is_some_and(|h| h.lab),
            "{} is not a lab row of the facts table",
            catalog::format_code(code)
        );
        assert!(catalog::code(code).is_some());
    }
    // the retirement's: a key uninstall on a SKU that holds none
    let (_d, t) = lab();
    let gone = t
        .execute(&[TargetOp::UninstallProductKey {
            product: ProductId::Office2019,
            activation_id: "70512334-47b4-44db-a233-be5ea33b914c".into(),
        }])
        .expect("run");
    let ChangeStatus::Failed {
        code: Some(code), ..
    } = gone[0]
    else {
        panic!("{gone:?}");
    };
    assert_eq!(code, SL_E_PKEY_NOT_INSTALLED);
    let row = kmsconf_model::facts::facts().hresult(code).expect("row");
    assert!(row.lab && row.ops.iter().any(|o| o == OpKind::UninstallKey.id()));
}

#[test]
fn a_missing_host_is_created_fresh_and_reported_once() {
    let (_d, t) = lab();
    let first = t.discover().expect("discover");
    assert!(first.created);
    assert_eq!(
        first.state.products[&ProductId::Windows].channel,
        Channel::KmsClient
    );
    assert!(!t.discover().expect("again").created);
}

/// As slmgr.vbs: the gated settings wait for an installed KMS host key, not for activation;
/// host caching is not gated at all. The listening port's clear (a retirement's, "applies to
/// KMS hosts only") passes the same gate.
#[test]
fn settings_wait_for_a_kms_host_key_not_for_activation() {
    let (_d, t) = lab();
    let set = |key: &str, value| {
        [TargetOp::SetService(
            ServiceSetting::named(key, value).expect("setting"),
        )]
    };
    let port = set("port", kmsconf_model::settings::SettingValue::U16(1689));
    let refused = t.execute(&port).expect("run");
    assert!(
        matches!(&refused[0], ChangeStatus::Failed { code: None, message } if message.contains("no KMS host key")),
        "{refused:?}"
    );
    let clear = [TargetOp::ClearListeningPort];
    let refused = t.execute(&clear).expect("run");
    assert!(
        matches!(&refused[0], ChangeStatus::Failed { code: None, message } if message.contains("no KMS host key")),
        "{refused:?}"
    );
    let caching = set(
        "host_caching",
        kmsconf_model::settings::SettingValue::Bool(false),
    );
    assert_eq!(
        t.execute(&caching).expect("run")[0],
        ChangeStatus::applied()
    );
    let install = [TargetOp::InstallProductKey {
        product: ProductId::Windows,
        key: key(),
    }];
    assert!(matches!(
        t.execute(&install).expect("run")[0],
        ChangeStatus::Applied { .. }
    ));
    // installed, not activated: taken
    assert_eq!(t.execute(&port).expect("run")[0], ChangeStatus::applied());
    let state = t.discover().expect("discover").state;
    assert_eq!(state.service.port(), 1689);
    assert!(state.service.restart_pending);
    assert!(!state.windows_is_activated_kms_host());
    assert_eq!(t.execute(&clear).expect("run")[0], ChangeStatus::applied());
    assert_eq!(t.discover().expect("discover").state.service.port(), 0);
}

/// A restart the intervals wait for shows nowhere on a real host (no registry value of theirs
/// differs from a property), so the lab does not show it either; a written port does (its
/// registry value differs from the port the service runs on) until the restart.
#[test]
fn a_pending_restart_shows_only_where_a_host_would_show_it() {
    use kmsconf_model::settings::SettingValue;
    let (_d, t) = lab();
    let set = |key: &str, value| {
        [TargetOp::SetService(
            ServiceSetting::named(key, value).expect("setting"),
        )]
    };
    let install = [TargetOp::InstallProductKey {
        product: ProductId::Windows,
        key: key(),
    }];
    t.execute(&install).expect("install");
    let pending = || {
        t.discover()
            .expect("discover")
            .state
            .service
            .restart_pending
    };
    let interval = set("activation_interval", SettingValue::U32(60));
    assert_eq!(
        t.execute(&interval).expect("run")[0],
        ChangeStatus::applied()
    );
    // the intervals have registry values (under `SL`, the VA 2.0 guide's; unverified since)
    assert!(pending(), "a written interval differs from the running one");
    let restart = [TargetOp::RestartService { expect: Vec::new() }];
    t.execute(&restart).expect("restart");
    assert!(!pending());
    let publish = set("publish_domains", SettingValue::List(Vec::new()));
    t.execute(&publish).expect("run");
    assert!(
        !pending(),
        "the publish list alone shows no pending restart"
    );
    let port = set("port", SettingValue::U16(1689));
    assert_eq!(t.execute(&port).expect("run")[0], ChangeStatus::applied());
    assert!(pending(), "a written port differs from the running one");
    t.execute(&restart).expect("restart");
    assert!(!pending());
}

/// The Office 2010 pack keeps one folder per host OS; only the host OS's folder is a pack.
#[test]
fn a_pack_of_per_os_folders_is_refused_naming_them() {
    let (d, t) = lab();
    let pack = d.path().join("office-2010");
    for os in ["win2k3", "win7", "win8"] {
        std::fs::create_dir_all(pack.join(os)).expect("mkdir");
        std::fs::write(pack.join(os).join("license.xrm-ms"), "x").expect("write");
    }
    let install = |path: std::path::PathBuf| {
        t.execute(&[TargetOp::InstallLicensePack {
            product: ProductId::Office2010,
            path,
        }])
        .expect("run")
        .remove(0)
    };
    let refused = install(pack.clone());
    assert!(
        matches!(&refused, ChangeStatus::Failed { code: Some(0x8007_0002), message } if message.contains("(win2k3, win7, win8): set license_pack to its `win8` folder")),
        "{refused:?}"
    );
    assert_eq!(install(pack.join("win8")), ChangeStatus::applied());
}

#[test]
fn office_keys_need_their_pack_and_online_activation_needs_internet() {
    let (_d, t) = lab();
    let office = [TargetOp::InstallProductKey {
        product: ProductId::Office2019,
        key: key(),
    }];
    assert!(matches!(
        t.execute(&office).expect("run")[0],
        ChangeStatus::Failed {
            code: Some(SL_E_INVALID_PRODUCT_KEY),
            ..
        }
    ));
    with_lab_file(&t.path, false, |f| {
        f.offline = true;
        Ok(())
    })
    .expect("control");
    let ops = [
        TargetOp::InstallProductKey {
            product: ProductId::Windows,
            key: key(),
        },
        TargetOp::ActivateOnline {
            product: ProductId::Windows,
        },
    ];
    let out = t.execute(&ops).expect("run");
    assert!(
        matches!(
            out[1],
            ChangeStatus::Failed {
                code: Some(SL_E_NETWORK),
                ..
            }
        ),
        "{out:?}"
    );
}

#[test]
fn phone_activation_takes_only_the_matching_confirmation_id() {
    let (_d, t) = lab();
    let w = ProductId::Windows;
    t.execute(&[TargetOp::InstallProductKey {
        product: w,
        key: key(),
    }])
    .expect("install");
    let iid = t.discover().expect("d").state.products[&w]
        .installation_id
        .clone()
        .expect("iid");
    assert_eq!(digits(&iid).len(), 63);
    let phone = |cid: &str| {
        let confirmation_id = ConfirmationId::parse(&Secret::new(cid)).expect("cid");
        t.execute(&[TargetOp::ActivateByPhone {
            product: w,
            confirmation_id,
        }])
        .expect("run")
        .remove(0)
    };
    let failed_with = |out: ChangeStatus| match out {
        ChangeStatus::Failed { code, .. } => code,
        other => panic!("{other:?}"),
    };
    // well-formed (every group checks) but another installation's
    assert_eq!(
        failed_with(phone(&"123450".repeat(8))),
        Some(SL_E_CIDIID_MISMATCHED)
    );
    // the right one with one digit mistyped fails its group's check digit first
    let right_text = confirmation_id_for(&iid).expect("cid");
    let typo: String = right_text
        .chars()
        .enumerate()
        .map(|(i, c)| match (i, c.to_digit(10)) {
            (8, Some(d)) => char::from_digit((d + 1) % 10, 10).unwrap_or(c),
            _ => c,
        })
        .collect();
    assert_eq!(
        failed_with(phone(&typo)),
        Some(SL_E_CIDIID_INVALID_CHECK_DIGITS)
    );
    let right = ConfirmationId::parse(&Secret::new(right_text)).expect("cid");
    let out = t
        .execute(&[TargetOp::ActivateByPhone {
            product: w,
            confirmation_id: right,
        }])
        .expect("run");
    assert_eq!(
        out[0],
        ChangeStatus::Applied {
            detail: Some("activated by phone".into())
        }
    );
}

#[test]
fn faults_fire_the_given_number_of_times() {
    let (_d, t) = lab();
    with_lab_file(&t.path, true, |f| {
        f.faults.push(Fault {
            op: OpKind::Firewall,
            hresult: 0x8007_0005,
            remaining: Some(1),
        });
        Ok(())
    })
    .expect("control");
    let op = [TargetOp::RemovePortRule];
    assert!(matches!(
        t.execute(&op).expect("run")[0],
        ChangeStatus::Failed {
            code: Some(0x8007_0005),
            ..
        }
    ));
    assert_eq!(t.execute(&op).expect("run")[0], ChangeStatus::applied());
}

#[test]
fn a_second_lock_fails_naming_the_holder_and_a_dead_holder_can_be_cleared() {
    let (_d, t) = lab();
    let holder = LockHolder::current("apply").expect("random source");
    let guard = t.lock(&holder).expect("first lock");
    match t.lock(&LockHolder::current("apply").expect("random source")) {
        Err(Error::Locked { holder: h, .. }) => assert_eq!(*h, holder),
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("expected Locked, got a second lock"),
    }
    let live = t
        .force_unlock(&holder.id)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(live.contains("live process"), "{live}");
    drop(guard);
    assert!(
        t.lock(&LockHolder::current("apply").expect("random source"))
            .is_ok(),
        "released on drop"
    );
    // a record left behind (as by a killed process) is cleared by force-unlock with its ID
    write_holder(&t.holder_path(), Some(&holder)).expect("write");
    assert!(t.force_unlock("wrong").is_err());
    assert_eq!(t.force_unlock(&holder.id).expect("unlock"), holder);
}

#[test]
fn a_lock_whose_record_is_still_being_written_names_its_holder() {
    let (_d, t) = lab();
    let holder = LockHolder::current("apply").expect("random source");
    let _guard = t.lock(&holder).expect("first lock");
    // the moment between the holder taking the OS lock and writing its record
    write_holder(&t.holder_path(), None).expect("clear");
    let record = t.holder_path();
    let written = holder.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        write_holder(&record, Some(&written)).expect("write");
    });
    match t.lock(&LockHolder::current("apply").expect("random source")) {
        Err(Error::Locked { holder: h, .. }) => assert_eq!(*h, holder),
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("expected Locked, got a second lock"),
    }
    writer.join().expect("writer");
    // a holder that never writes one is reported as such, after the wait
    write_holder(&t.holder_path(), None).expect("clear");
    let e = t
        .lock(&LockHolder::current("apply").expect("random source"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("left no record"), "{e}");
}

#[test]
fn a_corrupt_state_file_is_reported_and_left_alone() {
    let (_d, t) = lab();
    std::fs::write(&t.path, "{ not json").expect("write");
    let e = t.discover().expect_err("corrupt");
    assert!(e.to_string().contains("line 1"), "{e}");
    assert_eq!(
        std::fs::read_to_string(&t.path).expect("read"),
        "{ not json"
    );
}

#[test]
fn a_lab_file_from_before_clients_and_clock_still_loads() {
    let (_d, t) = lab();
    t.discover().expect("create");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&t.path).expect("read")).expect("json");
    let file = value.as_object_mut().expect("object");
    file.remove("clients");
    file.remove("clock_offset_seconds");
    let host = file["host"].as_object_mut().expect("host");
    for key in ["clock", "client_machine_id", "remaining_rearm_count"] {
        host.remove(key);
    }
    std::fs::write(&t.path, value.to_string()).expect("write");
    let state = t.discover().expect("old file loads").state;
    assert!(state.client_machine_id.is_some());
    assert_eq!(state.remaining_rearm_count, Some(LAB_REARM_COUNT));
    assert!(state.clock.is_some());
}

#[test]
fn extreme_numbers_in_a_hand_edited_file_are_not_an_overflow() {
    let (_d, t) = lab();
    with_lab_file(&t.path, true, |f| {
        f.clock_offset_seconds = i64::MAX;
        Ok(())
    })
    .expect("control");
    std::fs::write(round_trips_path(&t), u64::MAX.to_string()).expect("write");
    let state = t.discover().expect("discover").state;
    assert_eq!(state.clock, Some(i64::MAX));
    assert_eq!(round_trips(&t), u64::MAX);
}

fn round_trips_path(t: &LabTarget) -> PathBuf {
    PathBuf::from(format!("{}.lock", t.path.display()))
}

fn round_trips(t: &LabTarget) -> u64 {
    let text = std::fs::read_to_string(round_trips_path(t)).expect("lock file");
    text.trim().parse().expect("a count")
}

#[cfg(unix)]
#[test]
fn round_trips_are_counted_in_the_lock_file_and_a_discovery_leaves_the_state_file_alone() {
    let (_d, t) = lab();
    t.discover().expect("creates");
    // a rewrite replaces the file (a new inode), even with the same text
    let inode = || {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&t.path).expect("state file").ino()
    };
    let first = inode();
    t.discover().expect("again");
    assert_eq!(inode(), first);
    t.execute(&[]).expect("an empty batch is a round trip too");
    assert_eq!(round_trips(&t), 3);
    std::fs::write(round_trips_path(&t), "not a count, longer than one").expect("write");
    t.discover().expect("discover");
    assert_eq!(round_trips(&t), 1);
}

#[test]
fn a_file_that_kept_its_round_trips_loads_and_drops_them() {
    let (_d, t) = lab();
    t.discover().expect("creates");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&t.path).expect("read")).expect("json");
    value["round_trips"] = 7.into();
    std::fs::write(&t.path, value.to_string()).expect("write");
    with_lab_file(&t.path, false, |f| {
        f.offline = true;
        Ok(())
    })
    .expect("loads");
    let saved = std::fs::read_to_string(&t.path).expect("read");
    assert!(!saved.contains("round_trips"), "{saved}");
}

#[test]
fn discovery_reports_the_clock_with_its_offset() {
    let (_d, t) = lab();
    with_lab_file(&t.path, true, |f| {
        f.clock_offset_seconds = -7200;
        Ok(())
    })
    .expect("control");
    let before = kmsconf_model::clock::now();
    let clock = t.discover().expect("discover").state.clock.expect("clock");
    assert!((clock - (before - 7200)).abs() <= 2, "{clock} vs {before}");
}

#[test]
fn the_state_file_never_holds_the_key() {
    let (_d, t) = lab();
    t.execute(&[TargetOp::InstallProductKey {
        product: ProductId::Windows,
        key: key(),
    }])
    .expect("install");
    let text = std::fs::read_to_string(&t.path).expect("read");
    assert!(!text.contains("HJKMP"));
}

/// Clones (one CMID, `--count 3`) are logged as three 12290 events from three names; the
/// event log keeps to `since` and to both of its bounds, and its activation IDs name the edition.
#[test]
fn clones_are_logged_as_12290_events_within_the_bounds() {
    use kmsconf_model::events::{self, EventQuery};
    let dir = tempfile::tempdir().expect("tmp");
    let mut file = LabFile::fresh(&dir.path().join("k.json")).expect("fresh");
    let now = 2_000_000_000;
    let new =
        |count, cmid: Option<&str>, fqdn: Option<&str>, edition: &str, ago| clients::NewRequests {
            product: ProductId::Windows,
            count,
            cmid: cmid.map(Into::into),
            ago_seconds: ago,
            fqdn: fqdn.map(Into::into),
            edition: Some(edition.into()),
            activation_id: None,
        };
    let cmid = "e5c98033-aab6-4d0b-9af9-1d399597dd56";
    let clones = new(3, Some(cmid), None, "windows-enterprise", 3600);
    clients::add(&mut file, &clones, now).expect("clones");
    let old = new(
        1,
        None,
        Some("Web01.Corp.Example"),
        "windows-server-2022-datacenter",
        40 * 86_400,
    );
    clients::add(&mut file, &old, now).expect("old");
    let bad = new(1, None, Some("bad name"), "windows-enterprise", 0);
    assert!(clients::add(&mut file, &bad, now).is_err());
    let query = |window_seconds, max_events, max_bytes| EventQuery {
        window_seconds,
        max_events,
        max_bytes,
    };
    let wire = clients::event_log(&file, now, &query(30 * 86_400, 100, 1 << 20));
    let log = events::parse(&wire).expect("parses");
    assert_eq!(
        (log.rejected, log.requests.len(), log.truncated),
        (0, 3, false)
    );
    let names: std::collections::BTreeSet<&str> =
        log.requests.iter().map(|r| r.fqdn.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for r in &log.requests {
        assert_eq!((r.cmid.as_str(), r.min_count), (cmid, 25));
        // a fresh host is no KMS host yet: it refuses them
        assert_eq!(r.result, 0xC004_F042);
        let (product, edition) = catalog::asked_for(&r.activation_id).expect("known");
        assert_eq!(product, ProductId::Windows);
        assert_eq!(edition.map(|e| e.id.as_str()), Some("windows-enterprise"));
    }
    let all = events::parse(&clients::event_log(
        &file,
        now,
        &query(i64::MAX, 100, 1 << 20),
    ));
    assert_eq!(all.expect("parses").requests[0].fqdn, "web01.corp.example");
    let capped = clients::event_log(&file, now, &query(i64::MAX, 2, 1 << 20));
    assert!(capped.truncated && capped.events.len() == 2);
    let tiny = clients::event_log(&file, now, &query(i64::MAX, 100, 300));
    assert!(
        tiny.truncated && tiny.events.len() == 1,
        "{}",
        tiny.events.len()
    );
    assert_eq!(log.service.map(|s| s.running), Some(true));
}

#[test]
fn an_ad_activation_is_recorded_with_the_key_ending_only_and_needs_internet() {
    let (_dir, t) = lab();
    let create = [TargetOp::CreateActivationObject {
        name: "WS CSVLK".into(),
        key: key(),
    }];
    let out = t.execute(&create).expect("run");
    assert!(matches!(out[0], ChangeStatus::Applied { .. }), "{out:?}");
    let text = std::fs::read_to_string(&t.path).expect("lab file");
    assert!(!text.contains(KEY), "{text}");
    let file: LabFile = serde_json::from_str(&text).expect("lab file");
    assert_eq!(
        file.ad_activations,
        [AdActivationCall {
            method: kmsconf_model::adba::ONLINE_METHOD.into(),
            name: "WS CSVLK".into(),
            partial_key: "6789B".into(),
            installation_id: None,
        }]
    );
    with_lab_file(&t.path, false, |f| {
        f.offline = true;
        Ok(())
    })
    .expect("control");
    let out = t.execute(&create).expect("run");
    assert!(
        matches!(
            out[0],
            ChangeStatus::Failed {
                code: Some(SL_E_NETWORK),
                ..
            }
        ),
        "{out:?}"
    );
    let file: LabFile =
        serde_json::from_str(&std::fs::read_to_string(&t.path).expect("lab")).expect("lab");
    assert_eq!(
        file.ad_activations.len(),
        1,
        "a failed call is not recorded"
    );
}

/// Phone activation of an activation object: the installation ID is the same each time and
/// changes nothing; only its confirmation ID is taken (a mistyped digit fails its check digit,
/// another ID mismatches), even offline, and the call is recorded with the installation ID,
/// never the key or the confirmation ID.
#[test]
fn an_ad_phone_activation_takes_only_the_confirmation_id_of_its_installation_id() {
    let (_dir, t) = lab();
    with_lab_file(&t.path, true, |f| {
        f.offline = true;
        Ok(())
    })
    .expect("control");
    let show = [TargetOp::ShowActivationObjectInstallationId {
        name: "WS CSVLK".into(),
        key: key(),
    }];
    let iid = |out: &[ChangeStatus]| match &out[0] {
        ChangeStatus::Pending { message } => message.clone(),
        other => panic!("{other:?}"),
    };
    let first = iid(&t.execute(&show).expect("run"));
    assert_eq!(first, iid(&t.execute(&show).expect("run")));
    let iid = first
        .split_whitespace()
        .find(|w| w.len() == 71)
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();
    let cid = confirmation_id_for(&iid).expect("an installation ID");
    let deposit = |cid: &str| {
        [TargetOp::CreateActivationObjectByPhone {
            name: "WS CSVLK".into(),
            key: key(),
            confirmation_id: ConfirmationId::parse(&Secret::new(cid)).expect("48 digits"),
        }]
    };
    let code = |out: Vec<ChangeStatus>| match &out[0] {
        ChangeStatus::Failed { code, .. } => *code,
        _ => None,
    };
    let mut typo = cid.clone().into_bytes();
    typo[0] = if typo[0] == b'9' { b'8' } else { typo[0] + 1 };
    let typo = String::from_utf8(typo).expect("ascii");
    assert_eq!(
        code(t.execute(&deposit(&typo)).expect("run")),
        Some(SL_E_CIDIID_INVALID_CHECK_DIGITS)
    );
    let other = "123450-".repeat(7) + "123450";
    assert_eq!(
        code(t.execute(&deposit(&other)).expect("run")),
        Some(SL_E_CIDIID_MISMATCHED)
    );
    let file: LabFile =
        serde_json::from_str(&std::fs::read_to_string(&t.path).expect("lab")).expect("lab");
    assert!(file.ad_activations.is_empty(), "nothing taken yet");

    let out = t.execute(&deposit(&cid)).expect("run");
    assert!(matches!(out[0], ChangeStatus::Applied { .. }), "{out:?}");
    let text = std::fs::read_to_string(&t.path).expect("lab file");
    assert!(!text.contains(KEY) && !text.contains(&cid) && !text.contains(&cid.replace('-', "")));
    let file: LabFile = serde_json::from_str(&text).expect("lab file");
    assert_eq!(
        file.ad_activations,
        [AdActivationCall {
            method: kmsconf_model::adba::PHONE_METHOD.into(),
            name: "WS CSVLK".into(),
            partial_key: "6789B".into(),
            installation_id: Some(iid),
        }]
    );
}
