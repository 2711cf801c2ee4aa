//! Helpers of the tail bound's tests (`tail_bound.rs`, `teeth_tail_bound*.rs`, reviews 38–40).

use super::prepared::{append, lost, payload};
use seglog_segment::format::{
    TailBound, TAIL_BOUND_FILE_NAME, TAIL_BOUND_SLOT_LEN, TAIL_BOUND_SLOT_STRIDE,
};
use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::io::{FileSystem, SegmentFile};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// 16 MiB segments, so that a prepared one holds far more zeros than the bound's 4 MiB step;
/// only the prepared file keeps zeros.
pub fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 16 << 20,
        max_record_size_bytes: 8 << 10,
        zero_ahead_bytes: 0,
        ..SegmentOptions::default()
    }
}

/// The last segment file of the log at `/log`.
pub fn last_segment(fs: &SimFs) -> PathBuf {
    let mut names: Vec<String> = fs
        .list(Path::new("/log"))
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".seg"))
        .collect();
    names.sort();
    Path::new("/log").join(names.last().unwrap())
}

/// A new log at `/log` on `fs` with 5 acknowledged records (LSN → payload index), rolled
/// into a prepared segment.
pub fn open_and_roll_into_a_prepared_segment(
    fs: &SimFs,
    opts: SegmentOptions,
) -> (SegmentLog<SimFs>, BTreeMap<u64, u64>) {
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts, &mut ()).unwrap();
    let acked = (1..=5).map(|i| (append(&log, i).unwrap(), i)).collect();
    assert!(log.prepare_next_segment_now());
    log.roll().unwrap();
    (log, acked)
}

/// A log at `/log` whose last segment is made from a prepared file, with `records`
/// acknowledged records in it after 5 in the first segment; the process dies without closing
/// (every write kept). Returns the file system after the crash and the acknowledged records
/// (LSN → payload index).
pub fn crashed_after_a_prepared_roll(records: u64) -> (SimFs, BTreeMap<u64, u64>) {
    let fs = SimFs::new();
    let (log, mut acked) = open_and_roll_into_a_prepared_segment(&fs, opts());
    for i in 6..6 + records {
        acked.insert(append(&log, i).unwrap(), i);
    }
    assert_eq!(log.stats().prepared_rolls, 1);
    drop(log);
    (fs.crash(CrashMode::KeepUnsynced), acked)
}

/// How the slot written last before a process died was left (review 40).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastSlot {
    /// Its fdatasync failed (EIO): on Linux the page is marked clean and keeps the slot in
    /// the cache, never on the disk.
    SyncFailed,
    /// Written; the process died before its fdatasync.
    NeverSynced,
}

/// What [`slot_left_in_cache_then_torn`] leaves.
pub struct Aftermath {
    /// The file system after the power cut, the new writer's first slot torn on its disk.
    pub fs: SimFs,
    /// Acknowledged records (LSN → payload index).
    pub acked: BTreeMap<u64, u64>,
    /// The last segment.
    pub segment: PathBuf,
    /// Where its acknowledged data ends.
    pub data_end: u64,
    /// The older of the two durable slots naming it before `last`.
    pub older: TailBound,
}

/// 32 MiB segments: the next segment is not prepared in the background below 16 MiB, so the
/// scenario knows every write the writer makes.
pub fn opts_32mib() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 32 << 20,
        ..opts()
    }
}

fn bound_path() -> PathBuf {
    Path::new("/log").join(TAIL_BOUND_FILE_NAME)
}

fn newest_cached(fs: &SimFs) -> TailBound {
    TailBound::newest(&fs.read_file(&bound_path()).unwrap()).unwrap()
}

/// A prepared roll, then appends until two durable slots name the new segment and the next
/// round must move the bound; its slot is left as `last` says, not on the disk, and the
/// process dies. A new writer opens on the same boot (no power cut), and the power fails
/// while it writes its first slot, which the disk keeps torn (half the new bytes).
pub fn slot_left_in_cache_then_torn(last: LastSlot) -> Aftermath {
    let fs = SimFs::new();
    let (log, mut acked) = open_and_roll_into_a_prepared_segment(&fs, opts_32mib());
    let segment = log.segments().last().unwrap().clone();
    let mut slots: Vec<TailBound> = Vec::new();
    let mut i = 5;
    loop {
        i += 1;
        let tail = log.segments().last().unwrap().data_end;
        let slot = newest_cached(&fs);
        if slot.segment == segment.number && slots.last() != Some(&slot) {
            slots.push(slot);
        }
        let least_end = tail + payload(i).len() as u64;
        if slots.len() == 2 && least_end > slot.bound {
            break; // this round must move the bound
        }
        if slots.len() == 2 && least_end + 512 > slot.bound {
            continue; // it may or may not move the bound: not this one
        }
        acked.insert(append(&log, i).unwrap(), i);
    }
    let next = TailBound {
        generation: slots[1].generation + 1,
        bound: slots[1].bound + (4 << 20),
        ..slots[1]
    };
    match last {
        LastSlot::SyncFailed => {
            super::fail_next_sync(&fs);
            assert!(append(&log, i).is_err(), "the slot's sync failed");
            assert_eq!(newest_cached(&fs).generation, next.generation);
            drop(log);
        }
        LastSlot::NeverSynced => {
            drop(log);
            let file = fs.open(&bound_path()).unwrap();
            file.write_all_at(&next.encode(), next.slot_offset())
                .unwrap();
        }
    }

    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts_32mib(), &mut ()).unwrap();
    let data_end = log.segments().last().unwrap().data_end;
    let cached_before = fs.read_file(&bound_path()).unwrap();
    fs.power_off_after(fs.mutating_ops() + 1);
    assert!(append(&log, i + 1).is_err());
    let written = fs.read_file(&bound_path()).unwrap();
    drop(log);
    let fs = fs.crash(CrashMode::LoseUnsynced);
    let slot = |b: &[u8], at: usize| b[at..at + TAIL_BOUND_SLOT_LEN].to_vec();
    let torn_at = [0, TAIL_BOUND_SLOT_STRIDE as usize]
        .into_iter()
        .find(|&at| slot(&written, at) != slot(&cached_before, at))
        .expect("the new writer wrote a slot");
    let mut disk = fs.read_file(&bound_path()).unwrap();
    let half = TAIL_BOUND_SLOT_LEN / 2;
    disk[torn_at..torn_at + half].copy_from_slice(&written[torn_at..torn_at + half]);
    fs.replace_file(&bound_path(), disk).unwrap();
    Aftermath {
        fs,
        acked,
        segment: segment.path,
        data_end,
        older: slots[0],
    }
}

/// Whether the log of `after`, with one bit flipped in the acknowledged record lying across
/// the older slot's bound, opens losing acknowledged records (the right answer, as without
/// the bound file, is to refuse: the records after the damage prove it acknowledged).
pub fn damage_is_cut(after: &Aftermath) -> bool {
    let fs = after.fs.fork();
    let mut bytes = fs.read_file(&after.segment).unwrap();
    assert!(after.older.bound < after.data_end);
    bytes[after.older.bound as usize - 1] ^= 0x40;
    fs.replace_file(&after.segment, bytes).unwrap();
    match SegmentLog::open(fs, "/log", opts_32mib(), &mut ()) {
        Err(e) => {
            assert!(e.is_corruption(), "{e}");
            false
        }
        Ok((log, report)) => {
            let lost = lost(&log, &after.acked).len();
            eprintln!(
                "opened, cutting {lost} acknowledged records (tail_bound_used={}, torn_tail={:?})",
                report.tail_bound_used, report.torn_tail
            );
            lost > 0
        }
    }
}
