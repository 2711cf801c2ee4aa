//! Review 20 probes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::offload::*;
use seglog::io::sim::SimFs;
use seglog::{CheckpointMode, Log};
use std::sync::Arc;

fn offload_all(log: &Log<SimFs>, source: &MapSource) -> usize {
    let sealed: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    let active = log.segments().last().unwrap().number;
    let mut n = 0;
    for s in sealed.iter().filter(|s| s.number < active) {
        log.offload_segment(s.number, &target(source, s.number))
            .unwrap();
        n += 1;
    }
    n
}

#[test]
fn review20_reopen_with_checkpoints_off_keeps_offloaded_records() {
    let (fs, source, expected) = shipped_log();
    let log = open(&fs, &source).unwrap();
    assert!(offload_all(&log, &source) >= 3);
    log.close().unwrap();
    let log =
        Log::open_with_fs(fs.clone(), "/log", opts().checkpoints(CheckpointMode::Off)).unwrap();
    log.set_segment_source(source.clone() as Arc<dyn seglog::SegmentSource>);
    assert_eq!(common::dump(&log, &TENANTS), expected, "checkpoints off");
    append_some(&log, 120, 60);
    log.close().unwrap();
    let log = open(&fs, &source).unwrap();
    let after = common::dump(&log, &TENANTS);
    for (k, v) in &expected {
        let got = after.get(k).unwrap();
        for (a, b) in v.iter().zip(got) {
            assert!(
                b.2.len() >= a.2.len() && b.2[..a.2.len()] == a.2[..],
                "{k} lost events"
            );
        }
    }
    log.close().unwrap();
}

/// Appends to a log with offloaded segments, offloading each segment as soon as it is sealed
/// (keep_local_segments = 0), with a power cut after every operation: the open after the
/// crash must succeed and hold every acknowledged append.
#[test]
fn review20_power_cut_while_appending_and_offloading_each_sealed_segment() {
    use seglog::io::sim::CrashMode;
    let (base, base_source, _) = shipped_log();
    {
        let log = open(&base, &base_source).unwrap();
        offload_all(&log, &base_source);
        log.close().unwrap();
    }
    let run = |fs: &SimFs, source: &Arc<MapSource>, acked: &mut u64| -> seglog::Result<()> {
        let log = open(fs, source)?;
        for i in 0..60u64 {
            let payload = format!("p{i}:{}", "z".repeat(150));
            log.append_blocking("probe", "t0", payload.as_bytes())?;
            *acked = i + 1;
            let segs = log.segments();
            let active = segs.last().unwrap().number;
            for s in segs.iter().filter(|s| s.sealed && s.number < active) {
                let bytes = fs
                    .read_file(&s.path)
                    .ok_or_else(|| seglog::Error::InvalidOptions("gone".into()))?;
                source
                    .objects
                    .lock()
                    .unwrap()
                    .insert(location(s.number), bytes::Bytes::from(bytes));
                log.offload_segment(s.number, &target(source, s.number))?;
            }
        }
        log.close()
    };
    let start = base.mutating_ops();
    let total = {
        let fs = base.fork();
        let source = Arc::new(MapSource::default());
        *source.objects.lock().unwrap() = base_source.objects.lock().unwrap().clone();
        let mut acked = 0;
        run(&fs, &source, &mut acked).unwrap();
        fs.mutating_ops() - start
    };
    for n in 1..=total {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Torn { seed: n },
            CrashMode::Reordered { seed: n ^ 0x33 },
        ] {
            let fs = base.fork();
            let source = Arc::new(MapSource::default());
            *source.objects.lock().unwrap() = base_source.objects.lock().unwrap().clone();
            fs.power_off_after(start + n);
            let mut acked = 0;
            let _ = run(&fs, &source, &mut acked);
            let crashed = fs.crash(mode);
            let what = format!("cut after op {n} of {total}, {mode:?}, acked {acked}");
            let log = open(&crashed, &source).unwrap_or_else(|e| panic!("{what}: open: {e}"));
            let got = log
                .read("probe")
                .unwrap_or_else(|e| panic!("{what}: read: {e}"));
            assert!(got.len() as u64 >= acked, "{what}: {} events", got.len());
            log.close().unwrap();
        }
    }
    eprintln!("{total} ops");
}

/// Not the offload change (no segment is offloaded here): a merge compaction with several
/// outputs, a power cut after every operation (Reordered mode): the open after the crash
/// fails with "the replacement manifest names segment N at ..., which is missing".
#[test]
fn review20_power_cut_in_a_multi_output_merge_leaves_a_log_that_does_not_open() {
    use seglog::io::sim::CrashMode;
    let (base, source, _) = shipped_log();
    let expected = {
        let log = open(&base, &source).unwrap();
        append_some(&log, 120, 200);
        log.roll_blocking().unwrap();
        for s in log.segments().iter().filter(|s| s.sealed) {
            let bytes = base.read_file(&s.path).unwrap();
            source
                .objects
                .lock()
                .unwrap()
                .insert(location(s.number), bytes::Bytes::from(bytes));
        }
        let expected = common::dump(&log, &TENANTS);
        log.close().unwrap();
        expected
    };
    let run = |fs: &SimFs| -> seglog::Result<()> {
        let log = open(fs, &source)?;
        let plan = seglog::compaction::policy::merge_small_segments(
            &log.compaction_view(false)?,
            16 << 10,
            16 << 10,
        );
        log.compact_blocking(
            &plan,
            seglog::CompactOptions::default().target_segment_bytes(16 << 10),
            &mut |_, _| {},
        )?;
        log.close()
    };
    let start = base.mutating_ops();
    let total = {
        let fs = base.fork();
        run(&fs).unwrap();
        let log = open(&fs, &source).unwrap();
        assert_eq!(common::dump(&log, &TENANTS), expected);
        log.close().unwrap();
        fs.mutating_ops() - start
    };
    let mut failures = Vec::new();
    for n in 1..=total {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Torn { seed: n },
            CrashMode::Reordered { seed: n ^ 0x77 },
        ] {
            let fs = base.fork();
            fs.power_off_after(start + n);
            let _ = run(&fs);
            let crashed = fs.crash(mode);
            let what = format!("cut after op {n} of {total}, {mode:?}");
            let log = match open(&crashed, &source) {
                Ok(l) => l,
                Err(e) => {
                    failures.push(format!("{what}: open: {e}"));
                    continue;
                }
            };
            assert_eq!(common::dump(&log, &TENANTS), expected, "{what}");
            log.close().unwrap();
            let log = open(&crashed, &source).unwrap_or_else(|e| panic!("{what}: 2nd open: {e}"));
            assert_eq!(common::dump(&log, &TENANTS), expected, "{what}: 2nd");
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cuts: {failures:#?}",
        failures.len()
    );
}
