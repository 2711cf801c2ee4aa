//! Review 26 (of the prepared next segment, c85e38c): the open removed a leftover
//! NEXT_SEGMENT without a directory fsync, and the same run then created a new file under
//! the same name and renamed it into place. Under SimFs's `CrashMode::Reordered` (the
//! project's model of a file system that reorders metadata), a cut after that rename but
//! before its directory fsync could keep the rename and drop both the unlink and the new
//! link: the rename, replayed by name, then gave the segment's name to the OLD leftover file
//! and the log no longer opened. (A real file system renames the new inode, not a name, so
//! this is partly the simulation's; the fix costs one directory fsync, after a crash only.)
//! Fixed: the open fsyncs the directory after removing a leftover.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::prepared::{append, lost, opts, prepared_exists};

use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::SegmentLog;
use std::collections::BTreeMap;
use std::path::Path;

fn has_leftover(fs: &SimFs) -> bool {
    prepared_exists(fs, Path::new("/log"))
}

/// Run 1: a roll from a prepared file, cut after `cut1` operations, KeepUnsynced: returns
/// the machine if it left a NEXT_SEGMENT, and what was acknowledged.
fn run1(cut1: u64) -> Option<(SimFs, BTreeMap<u64, u64>)> {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let mut acked = BTreeMap::new();
    for i in 1..=3 {
        acked.insert(append(&log, i).unwrap(), i);
    }
    assert!(log.prepare_next_segment_now());
    fs.power_off_after(fs.mutating_ops() + cut1);
    let _ = log.roll();
    drop(log);
    let crashed = fs.crash(CrashMode::KeepUnsynced);
    has_leftover(&crashed).then_some((crashed, acked))
}

#[test]
fn a_leftover_prepared_file_never_becomes_a_segment_after_a_reordered_power_cut() {
    let mut failures = Vec::new();
    let mut cases = 0;
    for cut1 in 1..=8 {
        let Some((base, acked1)) = run1(cut1) else {
            continue;
        };
        for cut2 in 1..=12 {
            for seed in 0..24 {
                let fs = base.fork();
                let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ())
                    .unwrap_or_else(|e| panic!("run 2 open: {e}"));
                let mut acked = acked1.clone();
                // Acknowledged in run 2, before the roll.
                for i in 10..=12 {
                    acked.insert(append(&log, i).unwrap(), i);
                }
                assert!(log.prepare_next_segment_now());
                fs.power_off_after(fs.mutating_ops() + cut2);
                let _ = log.roll();
                drop(log);
                let crashed = fs.crash(CrashMode::Reordered { seed });
                cases += 1;
                match SegmentLog::open(crashed, "/log", opts(), &mut ()) {
                    Err(e) => failures.push(format!(
                        "cut1 {cut1} cut2 {cut2} seed {seed}: open failed: {e}"
                    )),
                    Ok((log, _)) => {
                        for lsn in lost(&log, &acked) {
                            failures.push(format!(
                                "cut1 {cut1} cut2 {cut2} seed {seed}: acked LSN {lsn} lost"
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(cases > 0, "no run left a leftover");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed, e.g.:\n{}",
        failures.len(),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
