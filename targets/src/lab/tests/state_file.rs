//! The lab host's files: apply locks and their records, corrupt and old state files, the round
//! trips counted in the lock file, the clock, and what the state file never holds.

use super::*;

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
