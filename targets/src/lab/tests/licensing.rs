//! The licensing service's operations on a lab host: the KMS settings and their gates, pending
//! restarts, license packs, online, phone and Active Directory-based activation, injected faults.

use super::*;

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
