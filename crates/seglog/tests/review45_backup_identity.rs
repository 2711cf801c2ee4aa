//! Review 45: `Log::backup` hard-links `LOG_ID` by path instead of writing the identity the
//! log holds. A backup is documented to open "with `Log::open` as a log of its own"; a
//! writer that knows its identity (in memory, checked at open) still hands a damaged file to
//! its backups, and one flipped bit in the shared inode afterwards stops the log and every
//! linked backup at once (a writer refuses a damaged `LOG_ID`; salvage and repair do not
//! mend it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{Log, Options};
use seglog_segment::format::LOG_ID_FILE_NAME;
use std::io::{Read, Seek, SeekFrom, Write};

/// Flips one bit of the file in place (as a bad sector would: same inode).
fn flip_in_place(path: &std::path::Path, at: u64) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= 0x01;
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&b).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn a_backup_opens_as_a_log_of_its_own_after_the_logs_identity_file_is_damaged() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let log = Log::open_blocking(&dir, Options::default()).unwrap();
    let id = log.log_id().unwrap();
    for i in 0..10u32 {
        log.append_blocking("e", "t", format!("{i}").as_bytes())
            .unwrap();
    }
    let backup = root.path().join("backup");
    log.backup_blocking(&backup).unwrap();
    // Bit rot in the log's LOG_ID after the backup was taken: the writer running is fine
    // (it read its identity at open).
    flip_in_place(&dir.join(LOG_ID_FILE_NAME), 16);
    assert_eq!(log.log_id(), Some(id));
    // A second backup, taken now by the live writer that knows its identity.
    let second = root.path().join("second");
    log.backup_blocking(&second).unwrap();
    log.close().unwrap();
    drop(log);
    let mut failures = Vec::new();
    for dest in [&backup, &second] {
        match Log::open_blocking(dest, Options::default()) {
            Ok(copy) => {
                assert_eq!(copy.log_id(), Some(id));
                assert_eq!(copy.read("e").unwrap().len(), 10);
                copy.close().unwrap();
            }
            Err(e) => failures.push(format!("{}: {e}", dest.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "backups that do not open as logs of their own:\n{}",
        failures.join("\n")
    );
}

/// `repair` (module invariant: "a salvage open that fails ... fails before its first cut")
/// on a log with a damaged segment and a damaged `LOG_ID`: the salvage open cuts the segment
/// (recovery runs before the identity is read), then fails on the identity; the repair
/// returns an error after changing the log, and a second repair finds nothing to do while
/// the log still does not open.
#[test]
fn a_repair_that_fails_on_the_identity_has_changed_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let log = Log::open_blocking(&dir, Options::default().preallocate(false)).unwrap();
    for i in 0..50u32 {
        log.append_blocking("e", "t", format!("event {i} {}", "x".repeat(40)).as_bytes())
            .unwrap();
    }
    log.close().unwrap();
    drop(log);
    let segment = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    let before = std::fs::read(&segment).unwrap();
    let mut damaged = before.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0xFF;
    std::fs::write(&segment, &damaged).unwrap();
    flip_in_place(&dir.join(LOG_ID_FILE_NAME), 16);
    let plan = seglog::plan_salvage(&seglog::io::StdFs, &dir).unwrap();
    assert!(plan.cut.is_some(), "{plan:?}");
    let repaired = seglog::repair_dir(&dir, |_| true);
    let after = std::fs::read(&segment).unwrap();
    let second = seglog::repair_dir(&dir, |_| true).map(|r| (r.repaired, r.plan.is_empty()));
    let opens = Log::open_blocking(&dir, Options::default())
        .map(|_| ())
        .map_err(|e| e.to_string());
    if let Err(e) = &repaired {
        assert_eq!(
            after.len(),
            damaged.len(),
            "the repair failed ({e}) after cutting the segment from {} to {} bytes; a second \
             repair: {second:?} (repaired, plan empty); the writer's open: {opens:?}",
            damaged.len(),
            after.len()
        );
    }
}
