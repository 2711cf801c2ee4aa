//! The log's identity (`LOG_ID`, docs/format.md §9): made by the first writer's open, the
//! same after every reopen, carried by a backup, read by a read-only open; a damaged file
//! stops a writer's open with a clear error (a reader does without it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{Log, Options};
use seglog_segment::format::{LogId, LOG_ID_FILE_NAME};

#[test]
fn a_log_keeps_one_identity_through_reopens_backups_and_read_only_opens() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let log = Log::open_blocking(&dir, Options::default()).unwrap();
    let id = log.log_id().expect("a writer always knows its identity");
    let on_disk = LogId::decode(&std::fs::read(dir.join(LOG_ID_FILE_NAME)).unwrap()).unwrap();
    assert_eq!(on_disk, id);
    log.append_blocking("e", "t", b"x").unwrap();
    let backup = root.path().join("backup");
    log.backup_blocking(&backup).unwrap();
    log.close().unwrap();
    drop(log);

    let reopened = Log::open_blocking(&dir, Options::default()).unwrap();
    assert_eq!(reopened.log_id(), Some(id));
    let reader = Log::open_read_only_blocking(&dir).unwrap();
    assert_eq!(reader.log_id(), Some(id));
    reopened.close().unwrap();

    let copy = Log::open_blocking(&backup, Options::default()).unwrap();
    assert_eq!(copy.log_id(), Some(id), "a backup is the same log");
    assert_eq!(copy.read("e").unwrap().len(), 1);
    copy.close().unwrap();

    let other = Log::open_blocking(root.path().join("other"), Options::default()).unwrap();
    assert_ne!(other.log_id(), Some(id), "another log, another identity");
    other.close().unwrap();
}

#[test]
fn a_log_from_before_identities_gets_one_at_its_first_writable_open() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let log = Log::open_blocking(&dir, Options::default()).unwrap();
    log.append_blocking("e", "t", b"x").unwrap();
    log.close().unwrap();
    drop(log);
    std::fs::remove_file(dir.join(LOG_ID_FILE_NAME)).unwrap();
    let reader = Log::open_read_only_blocking(&dir).unwrap();
    assert_eq!(reader.log_id(), None, "a reader makes nothing");
    assert!(!dir.join(LOG_ID_FILE_NAME).exists());
    let log = Log::open_blocking(&dir, Options::default()).unwrap();
    let id = log.log_id().unwrap();
    assert_eq!(log.read("e").unwrap().len(), 1);
    log.close().unwrap();
    drop(log);
    assert_eq!(
        Log::open_blocking(&dir, Options::default())
            .unwrap()
            .log_id(),
        Some(id)
    );
}

#[test]
fn a_damaged_identity_stops_a_writer_with_a_clear_error_and_not_a_reader() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let log = Log::open_blocking(&dir, Options::default()).unwrap();
    log.append_blocking("e", "t", b"x").unwrap();
    log.close().unwrap();
    drop(log);
    let path = dir.join(LOG_ID_FILE_NAME);
    let mut bytes = std::fs::read(&path).unwrap();
    for damaged in [
        {
            bytes[14] ^= 0x10;
            bytes.clone()
        },
        bytes[..20].to_vec(),
        [bytes.clone(), vec![0u8; 1 << 20]].concat(),
    ] {
        std::fs::write(&path, &damaged).unwrap();
        let Err(refused) = Log::open_blocking(&dir, Options::default()) else {
            panic!("a writer opened a log whose identity is damaged");
        };
        let text = refused.to_string();
        assert!(
            text.contains("LOG_ID") && text.contains("identity"),
            "{text}"
        );
        assert!(refused.is_corruption(), "{refused:?}");
        let reader = Log::open_read_only_blocking(&dir).unwrap();
        assert_eq!(reader.log_id(), None);
        assert_eq!(reader.read("e").unwrap().len(), 1);
        assert_eq!(std::fs::read(&path).unwrap(), damaged, "nothing rewrote it");
    }
}
