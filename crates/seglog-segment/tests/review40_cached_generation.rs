//! Review 40 (the tail bound after review 39): recovery read `TAIL_BOUND` through the page
//! cache. After a slot's fdatasync failed (EIO), the slot stayed in the cache, never on the
//! disk; the next writer on the same boot continued its generation, so its first slot went
//! to the place of the newest *durable* slot. A torn write of that slot and a power cut then
//! left only the older slot, whose bound lies megabytes below acknowledged data: damage
//! across it was cut silently, with every acknowledged record after it (2,682 here). A slot
//! a dead process wrote and never synced did the same.
//!
//! Fixed by reading the file as recovery reads the last segment: synced, its cached pages
//! dropped, then read, so that the generations continued are the disk's. Teeth for both
//! steps: `teeth_tail_bound_open.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::prepared::lost;
use common::tail_bound::{damage_is_cut, opts_32mib, slot_left_in_cache_then_torn, LastSlot};
use seglog_segment::format::{TailBound, TAIL_BOUND_FILE_NAME};
use seglog_segment::io::FileSystem;
use seglog_segment::SegmentLog;
use std::path::Path;

fn the_newest_valid_slot_covers_the_data(last: LastSlot) {
    let after = slot_left_in_cache_then_torn(last);
    let tb = Path::new("/log").join(TAIL_BOUND_FILE_NAME);
    let survivor = TailBound::newest(&after.fs.read_file(&tb).unwrap()).unwrap();
    assert!(
        survivor.bound >= after.data_end,
        "the surviving slot (generation {}) bounds the segment at {}, below acknowledged data ending at {}",
        survivor.generation,
        survivor.bound,
        after.data_end
    );
    let (log, _) = SegmentLog::open(after.fs, "/log", opts_32mib(), &mut ()).unwrap();
    assert!(lost(&log, &after.acked).is_empty());
}

#[test]
fn after_a_failed_slot_sync_the_surviving_slot_covers_the_data() {
    the_newest_valid_slot_covers_the_data(LastSlot::SyncFailed);
}

#[test]
fn after_a_slot_never_synced_the_surviving_slot_covers_the_data() {
    the_newest_valid_slot_covers_the_data(LastSlot::NeverSynced);
}

#[test]
fn damage_below_the_surviving_bound_is_refused_as_without_the_bound_file() {
    for last in [LastSlot::SyncFailed, LastSlot::NeverSynced] {
        let after = slot_left_in_cache_then_torn(last);
        // The control: the same log without the bound file refuses to open.
        let control = after.fs.fork();
        control
            .remove(&Path::new("/log").join(TAIL_BOUND_FILE_NAME))
            .unwrap();
        let mut bytes = control.read_file(&after.segment).unwrap();
        bytes[after.older.bound as usize - 1] ^= 0x40;
        control.replace_file(&after.segment, bytes).unwrap();
        let Err(err) = SegmentLog::open(control, "/log", opts_32mib(), &mut ()) else {
            panic!("control: damaged acknowledged data opened without the bound file");
        };
        assert!(err.is_corruption(), "{err}");

        assert!(!damage_is_cut(&after), "{last:?}: acknowledged records cut");
    }
}
