//! Teeth for the tail bound's fdatasync (`SyncPoint::TailBoundFsync`, format.md §3.6): the
//! crash enumeration of `teeth.rs` cannot show it (without it nothing of the bound file is
//! durable, and recovery reads to the end of written bytes, as without a bound). What it
//! guards is a bound that is older than the data: a power cut that keeps an older slot and
//! drops a newer one. Then damage to the last acknowledged records below the old bound, whose
//! proofs lie past it, is cut as a torn tail instead of refusing to open.
//!
//! Built only with `RUSTFLAGS="--cfg seglog_teeth"` (`.ci/run`). One test per binary: the
//! switch is process-wide.
#![cfg(seglog_teeth)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::tail_bound::opts;

use common::prepared::{append, lost};
use seglog_segment::format::{TailBound, TAIL_BOUND_FILE_NAME};
use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::teeth::{disable, SyncPoint};
use seglog_segment::SegmentLog;
use std::collections::BTreeMap;
use std::path::Path;

/// One power cut (`seed`) after ~9 MiB of acknowledged appends, then a damaged byte just
/// below the bound that survived; true when the reopened log silently lost acknowledged
/// records.
fn loses_acknowledged(seed: u64) -> bool {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let mut acked = BTreeMap::new();
    let mut i = 0;
    while log.segments().last().unwrap().data_end < 9 << 20 {
        i += 1;
        acked.insert(append(&log, i).unwrap(), i);
    }
    let path = log.segments().last().unwrap().path.clone();
    drop(log);
    let fs = fs.crash(CrashMode::Torn { seed });
    let Some(slot) = fs
        .read_file(&Path::new("/log").join(TAIL_BOUND_FILE_NAME))
        .and_then(|b| TailBound::newest(&b))
    else {
        return false;
    };
    let mut bytes = fs.read_file(&path).unwrap();
    let at = (slot.bound as usize).saturating_sub(200);
    if at >= bytes.len() {
        return false;
    }
    bytes[at] ^= 0x40;
    fs.replace_file(&path, bytes).unwrap();
    match SegmentLog::open(fs.clone(), "/log", opts(), &mut ()) {
        Ok((log, _)) => !lost(&log, &acked).is_empty(),
        // Refusing to open damaged acknowledged data is the right answer.
        Err(e) => {
            assert!(e.is_corruption(), "{e}");
            false
        }
    }
}

#[test]
fn the_tail_bound_fsync_is_needed() {
    let seeds = 0u64..24;
    disable(None);
    let with: usize = seeds.clone().filter(|&s| loses_acknowledged(s)).count();
    disable(Some(SyncPoint::TailBoundFsync));
    let without: usize = seeds.clone().filter(|&s| loses_acknowledged(s)).count();
    disable(None);
    eprintln!(
        "tail bound: {with} of {} power cuts lose acknowledged records with its fsync, {without} without",
        seeds.end
    );
    assert_eq!(
        with, 0,
        "acknowledged records lost with every sync in place"
    );
    assert!(without > 0, "removing TailBoundFsync went unnoticed");
}
