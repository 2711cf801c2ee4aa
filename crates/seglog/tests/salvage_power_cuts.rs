//! A power cut at any step of a salvage must leave a log that salvage can open again, and
//! that then opens in the default mode. (A review found that salvage cut the damaged segment
//! durably *before* removing the segments after it: a cut in between left a clean, shorter
//! segment followed by the later ones, a gap in sequences that no mode could open — "execution
//! exec-0 jumps from sequence 14 to 19".)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::small_inline_opts as opts;

use seglog::io::sim::{CrashMode, SimFs};
use seglog::{Log, RecoveryMode};
use seglog_segment::inspect::analyze_segment;

/// A log of four interleaved executions over several segments, with a bit flipped in the
/// middle of the second segment.
fn damaged_log() -> SimFs {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", opts(RecoveryMode::TolerateTornTail)).unwrap();
    for i in 0..120u64 {
        let body = format!("event {i} {}", "y".repeat((i * 7 % 80) as usize));
        log.append_blocking(&format!("exec-{}", i % 4), "tenant", body.as_bytes())
            .unwrap();
    }
    let segments = log.segments();
    assert!(segments.len() >= 4);
    log.close().unwrap();
    let victim = &segments[1].path;
    let mut bytes = fs.read_file(victim).unwrap();
    let offsets = analyze_segment(&bytes, 0).record_offsets;
    bytes[offsets[offsets.len() / 2] as usize + 50] ^= 0x01;
    fs.replace_file(victim, bytes).unwrap();
    fs
}

#[test]
fn a_power_cut_at_any_step_of_a_salvage_leaves_a_log_that_opens() {
    let salvage_ops = {
        let fs = damaged_log();
        let before = fs.mutating_ops();
        let log = Log::open_with_fs(fs.clone(), "/log", opts(RecoveryMode::Salvage)).unwrap();
        drop(log);
        fs.mutating_ops() - before
    };
    assert!(salvage_ops > 3);
    for n in 1..=salvage_ops {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Reordered { seed: n },
        ] {
            let fs = damaged_log();
            fs.power_off_after(fs.mutating_ops() + n);
            let _ = Log::open_with_fs(fs.clone(), "/log", opts(RecoveryMode::Salvage));
            let after = fs.crash(mode);
            let what = format!("cut after salvage operation {n}, {mode:?}");
            let log = Log::open_with_fs(after.clone(), "/log", opts(RecoveryMode::Salvage))
                .unwrap_or_else(|e| panic!("{what}: salvage cannot open it: {e}"));
            log.close().unwrap();
            let log = Log::open_with_fs(after, "/log", opts(RecoveryMode::TolerateTornTail))
                .unwrap_or_else(|e| panic!("{what}: the default mode cannot open it: {e}"));
            log.close().unwrap();
        }
    }
}
