//! Offloaded segments (docs/scale-out.md, "Read-through"): sealed segments whose file left
//! the directory, read through a `SegmentSource`. Power cuts at every operation of an
//! offload never lose or duplicate a record; reads, reopens, verification, compaction and
//! global-order reads handle them; bytes that fail their checks are errors, never data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::offload::*;

use bytes::Bytes;
use seglog::io::sim::{CrashMode, SimFs};
use seglog::Log;
use std::path::Path;
use std::sync::atomic::Ordering;

/// Offloads every sealed segment but the active one; stops at the first failure.
fn offload_all(log: &Log<SimFs>, source: &MapSource) -> seglog::Result<usize> {
    let sealed: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    let active = log.segments().last().unwrap().number;
    let mut n = 0;
    for s in sealed.iter().filter(|s| s.number < active) {
        log.offload_segment(s.number, &target(source, s.number))?;
        n += 1;
    }
    Ok(n)
}

fn seg_files(fs: &SimFs) -> usize {
    fs.file_names(Path::new("/log"))
        .iter()
        .filter(|n| n.ends_with(".seg"))
        .count()
}

#[test]
fn offloaded_segments_read_through_their_source_and_survive_a_reopen() {
    let (fs, source, expected) = shipped_log();
    let log = open(&fs, &source).unwrap();
    let offloaded = offload_all(&log, &source).unwrap();
    assert!(offloaded >= 3, "the data spans many segments: {offloaded}");
    assert_eq!(seg_files(&fs), 1, "only the active segment stays on disk");
    assert_eq!(log.offloaded_segments().len(), offloaded);
    let before = source.calls.load(Ordering::Relaxed);
    assert_eq!(common::dump(&log, &TENANTS), expected);
    let calls = source.calls.load(Ordering::Relaxed) - before;
    assert!(calls > 0, "the reads went to the source");
    // One call per offloaded segment and read round, not one per record: 5 executions,
    // each touching every segment at most twice (first bytes, then long records' rest).
    assert!(
        calls <= 5 * 2 * offloaded as u64,
        "reads are coalesced per segment: {calls} calls"
    );
    let report = log.verify().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.offloaded.len(), offloaded);
    log.close().unwrap();
    assert!(seglog::verify_dir_with_fs(&fs, Path::new("/log"))
        .unwrap()
        .is_clean());

    // Reopened: the records of offloaded segments come from their checkpoints, the bytes
    // from the source; appends go on with fresh numbers and LSNs.
    let log = open(&fs, &source).unwrap();
    assert_eq!(log.offloaded_segments().len(), offloaded);
    assert_eq!(common::dump(&log, &TENANTS), expected);
    let numbers: Vec<u64> = log.offloaded_segments().iter().map(|s| s.number).collect();
    let e1 = log.read("e1").unwrap().len();
    append_some(&log, 120, 40);
    assert!(log.segments().iter().all(|s| !numbers.contains(&s.number)));
    assert!(log.read("e1").unwrap().len() > e1);
    log.close().unwrap();

    // Without a source, a read of an offloaded record is a clear error.
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    let err = log.read("e0").unwrap_err();
    assert!(matches!(err, seglog::Error::Offloaded { .. }), "{err}");
}

#[test]
fn bytes_that_fail_their_checks_are_an_error_never_data() {
    let (fs, source, expected) = shipped_log();
    let log = open(&fs, &source).unwrap();
    offload_all(&log, &source).unwrap();
    let victim = log.offloaded_segments()[1].clone();
    let good = source.objects.lock().unwrap()[&victim.location].clone();
    // Every byte of a record region flipped in turn (a sample of offsets): never a panic,
    // never other events.
    for at in (64..good.len()).step_by(97) {
        let mut bad = good.to_vec();
        bad[at] ^= 0x40;
        source
            .objects
            .lock()
            .unwrap()
            .insert(victim.location.clone(), Bytes::from(bad));
        for e in ["e0", "e1", "e2", "e3", "e4"] {
            match log.read(e) {
                Ok(events) => {
                    let want = expected
                        .values()
                        .flatten()
                        .find(|(x, _, _)| x == e)
                        .unwrap();
                    let got: Vec<_> = events
                        .iter()
                        .map(|ev| (ev.seq, ev.timestamp_unix_nanos, ev.payload.to_vec()))
                        .collect();
                    assert_eq!(got, want.2, "flip at {at} gave other data for {e}");
                }
                Err(err) => assert!(
                    matches!(
                        err,
                        seglog::Error::Corruption(_) | seglog::Error::Segment(_)
                    ),
                    "flip at {at}: {err}"
                ),
            }
        }
    }
    // Another segment's bytes under this location: their salt differs, every read fails.
    let other = source.objects.lock().unwrap()[&log.offloaded_segments()[2].location].clone();
    source
        .objects
        .lock()
        .unwrap()
        .insert(victim.location.clone(), other);
    let touching: Vec<&str> = ["e0", "e1", "e2", "e3", "e4"]
        .into_iter()
        .filter(|e| log.read(e).is_err())
        .collect();
    assert!(!touching.is_empty(), "some execution has records in it");
    // A truncated object.
    source
        .objects
        .lock()
        .unwrap()
        .insert(victim.location.clone(), good.slice(..good.len() / 2));
    assert!(touching.iter().all(|e| log.read(e).is_err()));
    // Healed: reads are right again.
    source
        .objects
        .lock()
        .unwrap()
        .insert(victim.location.clone(), good);
    assert_eq!(common::dump(&log, &TENANTS), expected);
}

#[test]
fn an_erasure_brings_offloaded_segments_back_and_global_reads_refuse_them() {
    let (fs, source, expected) = shipped_log();
    // Without a source, an explicit erasure of records in an offloaded segment is refused,
    // and nothing changes.
    {
        let log = open(&fs, &source).unwrap();
        offload_all(&log, &source).unwrap();
        log.close().unwrap();
        let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
        let plan =
            seglog::compaction::policy::drop_tenant(&log.compaction_view(false).unwrap(), "t1");
        let err = log
            .compact_blocking(&plan, seglog::CompactOptions::default(), &mut |_, _| {})
            .unwrap_err();
        assert!(matches!(err, seglog::Error::Offloaded { .. }), "{err}");
        log.close().unwrap();
    }
    let log = open(&fs, &source).unwrap();
    assert_eq!(common::dump(&log, &TENANTS), expected);
    let offloaded_before = log.offloaded_segments().len();
    // Global-order reads over offloaded segments fail instead of skipping their records.
    assert!(matches!(
        log.read_global(0, 10).unwrap_err(),
        seglog::Error::Offloaded { .. }
    ));
    assert!(log.latest_lsn().unwrap() > 0);
    // A backup downloads them through the source (backup_offloaded.rs).
    let report = log.backup_blocking("/backup").unwrap();
    assert_eq!(report.segments_downloaded, offloaded_before);
    // With a source, the erasure brings back the offloaded segments holding the tenant's
    // records (rehydrates them) and rewrites them as any compaction does.
    let plan = seglog::compaction::policy::drop_tenant(&log.compaction_view(false).unwrap(), "t1");
    let report = log
        .compact_blocking(&plan, seglog::CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert!(report.executions_dropped >= 2, "{report:?}");
    let after = common::dump(&log, &TENANTS);
    assert_eq!(after["t0"], expected["t0"], "the other tenant is untouched");
    assert!(after["t1"].is_empty(), "{:?}", after["t1"]);
    assert!(
        log.offloaded_segments().len() < offloaded_before,
        "segments came back to be rewritten"
    );
    // No stub is left for a segment the log holds locally, and the log verifies clean.
    let local: Vec<u64> = log.segments().iter().map(|s| s.number).collect();
    assert!(log
        .offloaded_segments()
        .iter()
        .all(|o| !local.contains(&o.number)));
    assert!(log.verify().unwrap().is_clean());
    log.close().unwrap();
    // Reopened: the same, and none of the erased records is in a local file.
    let log = open(&fs, &source).unwrap();
    assert_eq!(common::dump(&log, &TENANTS), after);
    assert!(log.verify().unwrap().is_clean());
    log.close().unwrap();
    for name in fs.file_names(Path::new("/log")) {
        let bytes = fs.read_file(&Path::new("/log").join(&name)).unwrap();
        for (_, _, events) in &expected["t1"] {
            for (_, _, payload) in events {
                assert!(
                    !bytes
                        .windows(payload.len())
                        .any(|w| w == payload.as_slice()),
                    "{name} still holds an erased payload"
                );
            }
        }
    }
}

/// Rehydration (`Log::rehydrate_segment`, what an erasure runs first): bytes that fail
/// their checks (another segment's object, a flipped byte, a short object) are refused and
/// change nothing; good bytes bring the segment back, readable, and it can leave again.
#[test]
fn a_rehydration_of_bytes_that_fail_their_checks_changes_nothing() {
    let (fs, source, expected) = shipped_log();
    let log = open(&fs, &source).unwrap();
    offload_all(&log, &source).unwrap();
    let victim = log.offloaded_segments()[1].clone();
    let good = source.objects.lock().unwrap()[&victim.location].clone();
    let other = source.objects.lock().unwrap()[&log.offloaded_segments()[2].location].clone();
    let mut flipped = good.to_vec();
    flipped[good.len() / 2] ^= 1;
    for bad in [other, Bytes::from(flipped), good.slice(..good.len() - 1)] {
        source
            .objects
            .lock()
            .unwrap()
            .insert(victim.location.clone(), bad);
        let err = log.rehydrate_segment(victim.number).unwrap_err();
        assert!(
            matches!(
                err,
                seglog::Error::Corruption(_) | seglog::Error::Offloaded { .. }
            ),
            "{err}"
        );
        assert!(log.offloaded_segments().contains(&victim));
        assert!(log.segments().iter().all(|s| s.number != victim.number));
        assert_eq!(seg_files(&fs), 1, "no file left behind");
    }
    source
        .objects
        .lock()
        .unwrap()
        .insert(victim.location.clone(), good);
    log.rehydrate_segment(victim.number).unwrap();
    assert!(!log.offloaded_segments().contains(&victim));
    assert!(log
        .segments()
        .iter()
        .any(|s| s.number == victim.number && s.sealed));
    assert_eq!(seg_files(&fs), 2);
    assert_eq!(common::dump(&log, &TENANTS), expected);
    assert!(log.verify().unwrap().is_clean());
    // Rehydrating a local segment is refused; offloading it again works.
    assert!(log.rehydrate_segment(victim.number).is_err());
    log.offload_segment(victim.number, &target(&source, victim.number))
        .unwrap();
    assert_eq!(common::dump(&log, &TENANTS), expected);
}

/// A power cut at every operation of rehydrating every offloaded segment: the reopened log
/// has every record, each segment local or offloaded (never both, never neither), verifies
/// clean, and the rehydrations go on from there.
#[test]
fn a_power_cut_anywhere_in_a_rehydration_loses_and_duplicates_nothing() {
    let (base, source, expected) = shipped_log();
    {
        let log = open(&base, &source).unwrap();
        offload_all(&log, &source).unwrap();
        log.close().unwrap();
    }
    let rehydrate_all = |log: &Log<SimFs>| -> seglog::Result<()> {
        for o in log.offloaded_segments() {
            log.rehydrate_segment(o.number)?;
        }
        Ok(())
    };
    let start = base.mutating_ops();
    let total_ops = {
        let fs = base.fork();
        let before = fs.mutating_ops();
        let log = open(&fs, &source).unwrap();
        rehydrate_all(&log).unwrap();
        assert!(log.offloaded_segments().is_empty());
        drop(log);
        fs.mutating_ops() - before
    };
    let mut came_back = 0;
    for n in 1..=total_ops {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Torn { seed: n },
            CrashMode::Reordered { seed: n ^ 0x5A5A },
        ] {
            let fs = base.fork();
            fs.power_off_after(start + n);
            if let Ok(log) = open(&fs, &source) {
                let _ = rehydrate_all(&log);
            }
            let crashed = fs.crash(mode);
            let what = format!("cut after op {n} of {total_ops}, {mode:?}");
            let log = open(&crashed, &source).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(common::dump(&log, &TENANTS), expected, "{what}");
            let report = log.verify().unwrap();
            assert!(report.is_clean(), "{what}: {report:?}");
            let local: Vec<u64> = log.segments().iter().map(|s| s.number).collect();
            for o in log.offloaded_segments() {
                assert!(
                    !local.contains(&o.number),
                    "{what}: segment {} twice",
                    o.number
                );
            }
            came_back += usize::from(local.len() > 1);
            rehydrate_all(&log).unwrap_or_else(|e| panic!("{what}: again: {e}"));
            assert!(log.offloaded_segments().is_empty(), "{what}");
            assert_eq!(common::dump(&log, &TENANTS), expected, "{what}: after");
            log.close().unwrap();
            let log = open(&crashed, &source).unwrap();
            assert_eq!(common::dump(&log, &TENANTS), expected, "{what}: reopened");
            log.close().unwrap();
        }
    }
    assert!(came_back > 0, "some cuts came after a rehydration's commit");
    eprintln!("rehydration: power cut after each of {total_ops} operations × 4 modes");
}

#[test]
fn a_power_cut_anywhere_in_an_offload_loses_and_duplicates_nothing() {
    let (base, source, expected) = shipped_log();
    // Operations count from the file system's creation (forks included).
    let start = base.mutating_ops();
    let total_ops = {
        let fs = base.fork();
        let before = fs.mutating_ops();
        let log = open(&fs, &source).unwrap();
        offload_all(&log, &source).unwrap();
        drop(log);
        fs.mutating_ops() - before
    };
    let mut finished = 0;
    for n in 1..=total_ops {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Torn { seed: n },
            CrashMode::Reordered { seed: n ^ 0x5A5A },
        ] {
            let fs = base.fork();
            fs.power_off_after(start + n);
            if let Ok(log) = open(&fs, &source) {
                let _ = offload_all(&log, &source);
            }
            let crashed = fs.crash(mode);
            let what = format!("cut after op {n} of {total_ops}, {mode:?}");
            let log = open(&crashed, &source).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(common::dump(&log, &TENANTS), expected, "{what}");
            let report = log.verify().unwrap();
            assert!(report.is_clean(), "{what}: {report:?}");
            // Every segment is either local or offloaded, never both, never neither.
            let local: Vec<u64> = log.segments().iter().map(|s| s.number).collect();
            for o in log.offloaded_segments() {
                assert!(
                    !local.contains(&o.number),
                    "{what}: segment {} twice",
                    o.number
                );
            }
            finished += usize::from(!log.offloaded_segments().is_empty());
            // The offloads go on from where the cut left them.
            offload_all(&log, &source).unwrap();
            assert_eq!(common::dump(&log, &TENANTS), expected, "{what}: after");
            log.close().unwrap();
        }
    }
    assert!(finished > 0, "some cuts came after an offload's stub");
    eprintln!("offload: power cut after each of {total_ops} operations × 4 modes");
}

#[test]
fn a_merge_of_local_segments_never_spans_an_offloaded_one() {
    let (fs, source, expected) = shipped_log();
    let log = open(&fs, &source).unwrap();
    let sealed: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    assert!(sealed.len() >= 3);
    // Only a middle segment leaves the disk: local segments lie on both sides of it.
    let middle = sealed[1].number;
    log.offload_segment(middle, &target(&source, middle))
        .unwrap();
    let plan = seglog::compaction::policy::merge_small_segments(
        &log.compaction_view(false).unwrap(),
        1 << 20,
        1 << 20,
    );
    log.compact_blocking(
        &plan,
        seglog::CompactOptions::default().target_segment_bytes(1 << 20),
        &mut |_, _| {},
    )
    .unwrap();
    let offloaded = &log.offloaded_segments()[0];
    for s in log.segments() {
        assert!(
            s.last_lsn < offloaded.first_lsn || s.first_lsn > offloaded.last_lsn,
            "segment {} ({}..={}) overlaps the offloaded one",
            s.number,
            s.first_lsn,
            s.last_lsn
        );
    }
    assert_eq!(common::dump(&log, &TENANTS), expected);
    log.close().unwrap();
    let log = open(&fs, &source).unwrap();
    assert_eq!(common::dump(&log, &TENANTS), expected);
    assert!(log.verify().unwrap().is_clean());
}

#[test]
fn automatic_retention_skips_executions_with_records_in_offloaded_segments() {
    let (fs, source, expected) = shipped_log();
    let log = open(&fs, &source).unwrap();
    offload_all(&log, &source).unwrap();
    // Only in the active segment: dropped by age; every execution of the shipped log has
    // records in offloaded segments: kept, and no pass fails.
    log.append_blocking("young-only-local", "t0", b"x").unwrap();
    log.close().unwrap();
    let retention = seglog::Retention::default()
        .max_age(std::time::Duration::from_millis(1))
        .interval(std::time::Duration::from_millis(20));
    let log = Log::open_with_fs(fs.clone(), "/log", opts().retention(retention)).unwrap();
    log.set_segment_source(source.clone());
    std::thread::sleep(std::time::Duration::from_millis(50));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while log.exists("young-only-local").unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            log.stats().retention
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let stats = log.stats().retention;
    assert_eq!(stats.failures, 0, "{stats:?}");
    assert_eq!(stats.executions_dropped, 1, "{stats:?}");
    assert_eq!(common::dump(&log, &TENANTS), expected);
}
