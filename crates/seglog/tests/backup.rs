//! `Log::backup`: a copy taken while writers append opens as a log of its own, verifies
//! clean, holds every event acknowledged before the backup started, survives a power cut
//! right after it returned, and never holds data erased before it started.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::io::sim::{CrashMode, SimFs};
use seglog::io::FileSystem;
use seglog::{CheckpointMode, CompactOptions, Log, Options};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const MARKER: &str = "ERASE-ME-51c2";

fn small() -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(CheckpointMode::Background)
}

fn payload(exec: &str, seq: u64) -> Vec<u8> {
    format!("{exec}/{seq}/{}", "y".repeat((seq % 30) as usize)).into_bytes()
}

/// Events of `exec`, checked dense from 1 with the payloads written; returns how many.
fn check_prefix<F: FileSystem>(log: &Log<F>, exec: &str) -> u64 {
    let events = log.read(exec).unwrap();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "{exec}");
        assert_eq!(&e.payload[..], &payload(exec, e.seq)[..], "{exec}");
    }
    events.len() as u64
}

fn contains_marker(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            // The checkpoint thread renames its temporary files away as we look.
            let bytes = match std::fs::read(p) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
                read => read.unwrap(),
            };
            bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes())
        })
        .map(|p| p.display().to_string())
        .collect()
}

#[test]
fn a_backup_taken_while_writers_append_holds_every_earlier_ack_and_opens_clean() {
    let dir = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let dest = dest.path().join("copy");
    let log = Log::open_blocking(dir.path(), small()).unwrap();
    const WRITERS: usize = 4;
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (log, acked, stop) = (log.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let exec = format!("w{w}");
                let mut seq = 0;
                while !stop.load(Ordering::SeqCst) || seq < 50 {
                    seq += 1;
                    assert_eq!(
                        log.append_blocking(&exec, "t", &payload(&exec, seq))
                            .unwrap(),
                        seq
                    );
                    acked[w].store(seq, Ordering::SeqCst);
                }
            })
        })
        .collect();
    while acked.iter().any(|a| a.load(Ordering::SeqCst) < 30) {
        std::thread::yield_now();
    }
    let before: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    let report = log.backup_blocking(&dest).unwrap();
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    assert!(
        report.segments > 2 && report.segments_linked > 0,
        "{report:?}"
    );
    // The live log keeps working.
    log.append_blocking("after", "t", &payload("after", 1))
        .unwrap();
    let total: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    log.close().unwrap();

    let copy = Log::open_blocking(&dest, small()).unwrap();
    assert!(
        copy.stats().recovery.checkpoints_loaded > 0,
        "checkpoints were copied"
    );
    for (w, acked_before) in before.iter().enumerate() {
        let n = check_prefix(&copy, &format!("w{w}"));
        assert!(
            n >= *acked_before,
            "w{w}: {n} events in the copy, {acked_before} acked before"
        );
        assert!(n <= total[w]);
    }
    assert_eq!(copy.latest_seq("after").unwrap(), None);
    assert!(copy.scrub().unwrap().is_clean());
    let verified = copy.verify().unwrap();
    assert!(verified.is_clean(), "{verified:?}");
    // The copy is a log of its own: it takes appends, and the live log is unaffected.
    copy.append_blocking("w0", "t", b"copy only").unwrap();
    copy.close().unwrap();
    let live = Log::open_blocking(dir.path(), small()).unwrap();
    for (w, n) in total.iter().enumerate() {
        assert_eq!(check_prefix(&live, &format!("w{w}")), *n);
    }
    assert_eq!(check_prefix(&live, "after"), 1);
    assert!(live.verify().unwrap().is_clean());
}

#[test]
fn a_backup_after_an_erasure_holds_none_of_the_erased_data() {
    let dir = tempfile::tempdir().unwrap();
    let dests = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), small()).unwrap();
    for i in 1..=60u64 {
        log.append_blocking("keep", "a", &payload("keep", i))
            .unwrap();
        let secret = format!("{MARKER} {i}");
        log.append_blocking("doomed", "b", secret.as_bytes())
            .unwrap();
    }
    let early = dests.path().join("early");
    log.backup_blocking(&early).unwrap();
    let plan = policy::drop_tenant(&log.compaction_view(false).unwrap(), "b");
    log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert!(contains_marker(dir.path()).is_empty());
    let late = dests.path().join("late");
    log.backup_blocking(&late).unwrap();
    assert_eq!(contains_marker(&late), Vec::<String>::new());
    // The earlier backup predates the erasure and keeps it whole: the erasure rewrote the
    // live files, it did not touch the linked ones.
    assert!(!contains_marker(&early).is_empty());
    let copy = Log::open_blocking(&early, small()).unwrap();
    assert_eq!(copy.read("doomed").unwrap().len(), 60);
    assert_eq!(check_prefix(&copy, "keep"), 60);
    let copy = Log::open_blocking(&late, small()).unwrap();
    assert!(copy.read("doomed").unwrap().is_empty());
    assert_eq!(check_prefix(&copy, "keep"), 60);
    // A read-only log's backup refreshes first: an erasure before it is not undone.
    let reader = Log::open_read_only_blocking(dir.path()).unwrap();
    log.append_blocking("doomed2", "c", MARKER.as_bytes())
        .unwrap();
    log.append_blocking("doomed2", "c", MARKER.as_bytes())
        .unwrap();
    log.append_blocking("keep", "a", &payload("keep", 61))
        .unwrap();
    let plan = policy::drop_tenant(&log.compaction_view(false).unwrap(), "c");
    log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    let from_reader = dests.path().join("from-reader");
    reader.backup_blocking(&from_reader).unwrap();
    assert_eq!(contains_marker(&from_reader), Vec::<String>::new());
    let copy = Log::open_blocking(&from_reader, small()).unwrap();
    assert_eq!(check_prefix(&copy, "keep"), 61);
}

#[test]
fn a_backup_refuses_a_destination_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    std::fs::write(dest.path().join("precious"), b"keep me").unwrap();
    let log = Log::open_blocking(dir.path(), Options::default()).unwrap();
    log.append_blocking("a", "t", b"x").unwrap();
    let err = log.backup_blocking(dest.path()).unwrap_err();
    assert!(
        matches!(
            err,
            seglog::Error::Segment(seglog_segment::Error::DestinationNotEmpty { .. })
        ),
        "{err:?}"
    );
    let names: Vec<_> = std::fs::read_dir(dest.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
    // An empty existing directory is fine.
    let empty = tempfile::tempdir().unwrap();
    log.backup_blocking(empty.path()).unwrap();
    assert_eq!(
        check_prefix_raw(&Log::open_blocking(empty.path(), Options::default()).unwrap()),
        1
    );
}

fn check_prefix_raw<F: FileSystem>(log: &Log<F>) -> usize {
    log.read("a").unwrap().len()
}

#[test]
fn a_backup_survives_a_power_cut_right_after_it_returned() {
    for mode in [
        CrashMode::LoseUnsynced,
        CrashMode::Torn { seed: 7 },
        CrashMode::Reordered { seed: 11 },
    ] {
        let fs = SimFs::new();
        let log = Log::open_with_fs(fs.clone(), "/data/log", small()).unwrap();
        for seq in 1..=80 {
            log.append_blocking("a", "t", &payload("a", seq)).unwrap();
        }
        // The simulated file system links as the kernel does: the sealed segments' second
        // names must survive the power cut as the copied files do.
        let report = log.backup_blocking("/backups/new/copy").unwrap();
        assert!(report.segments_linked > 0, "{report:?}");
        let crashed = fs.crash(mode);
        let copy = Log::open_with_fs(crashed, "/backups/new/copy", small()).unwrap();
        assert_eq!(check_prefix(&copy, "a"), 80, "{mode:?}");
        assert!(copy.verify().unwrap().is_clean());
    }
}

#[test]
fn a_read_only_logs_backup_of_a_live_log_holds_what_the_writer_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), small()).unwrap();
    for seq in 1..=100 {
        log.append_blocking("a", "t", &payload("a", seq)).unwrap();
    }
    let reader = Log::open_read_only_blocking(dir.path()).unwrap();
    for seq in 101..=150 {
        log.append_blocking("a", "t", &payload("a", seq)).unwrap();
    }
    let report = reader.backup_blocking(dest.path().join("b")).unwrap();
    assert!(report.segments_linked > 0);
    log.append_blocking("a", "t", &payload("a", 151)).unwrap();
    let copy = Log::open_blocking(dest.path().join("b"), small()).unwrap();
    // Refreshed first: everything the writer's records proved durable, so all but the
    // newest commit group.
    assert_eq!(check_prefix(&copy, "a"), 149);
}

#[test]
fn a_backup_or_verify_from_a_compactions_progress_callback_fails_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let dests = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), small()).unwrap();
    for seq in 1..=60 {
        log.append_blocking("a", "t", &payload("a", seq)).unwrap();
        log.append_blocking("b", "u", &payload("b", seq)).unwrap();
    }
    let plan = policy::drop_tenant(&log.compaction_view(false).unwrap(), "u");
    let mut results = Vec::new();
    log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {
        if results.is_empty() {
            results.push((
                log.backup_blocking(dests.path().join("x")).is_err(),
                log.verify().is_err(),
            ));
        }
    })
    .unwrap();
    assert_eq!(results, vec![(true, true)]);
    // Outside the callback both work.
    log.backup_blocking(dests.path().join("y")).unwrap();
    assert!(log.verify().unwrap().is_clean());
}

/// Review 8: a read-only view is a directory listing, and a listing can show a new last
/// segment whose name is not durable yet (the writer syncs the directory right after). If
/// the power then fails, the writer appends to the segment before it again: a backup that
/// had linked that segment would change under the writer's appends. So a read-only backup
/// links only segments followed by two more (the later one's creation proves the middle
/// one's name durable) and copies the one before the last.
#[test]
fn a_read_only_backup_never_links_the_segment_before_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), small()).unwrap();
    for seq in 1..=400 {
        log.append_blocking("a", "t", &payload("a", seq)).unwrap();
    }
    let segments = log.segments().len();
    assert!(
        segments >= 4,
        "the test needs several sealed segments ({segments})"
    );
    let reader = Log::open_read_only_blocking(dir.path()).unwrap();
    let report = reader.backup_blocking(dest.path().join("b")).unwrap();
    assert_eq!(report.segments, segments);
    assert_eq!(
        report.segments_linked,
        segments - 2,
        "a read-only backup linked the segment before the last (or the last)"
    );
    // The writer's own backup links every sealed segment: its table only holds segments
    // whose names are durable.
    let report = log.backup_blocking(dest.path().join("w")).unwrap();
    assert_eq!(report.segments_linked, segments - 1);
    let copy = Log::open_blocking(dest.path().join("b"), small()).unwrap();
    // All but the newest commit group, which no later record vouches for yet.
    assert!(check_prefix(&copy, "a") >= 399);
}
