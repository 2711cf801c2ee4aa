//! Teeth for how an open reads `TAIL_BOUND` (review 40): synced
//! (`SyncPoint::RecoveredTailBoundFsync`), then its cached pages dropped
//! (`SyncPoint::RecoveredTailBoundEvict`), then read. Without either, a slot that never
//! reached the disk (its sync failed, or the process died before it) hands the next writer a
//! generation the disk never saw; that writer's first slot overwrites the newest durable one,
//! and a torn write of it leaves a bound below acknowledged data.
//!
//! Built only with `RUSTFLAGS="--cfg seglog_teeth"` (`.ci/run`). One test per binary: the
//! switch is process-wide.
#![cfg(seglog_teeth)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::tail_bound::{damage_is_cut, slot_left_in_cache_then_torn, LastSlot};
use seglog_segment::teeth::{disable, SyncPoint};

#[test]
fn the_open_reads_the_tail_bound_from_the_disk() {
    let cases = [
        (LastSlot::NeverSynced, SyncPoint::RecoveredTailBoundFsync),
        (LastSlot::SyncFailed, SyncPoint::RecoveredTailBoundEvict),
    ];
    for (last, point) in cases {
        disable(None);
        let with = damage_is_cut(&slot_left_in_cache_then_torn(last));
        disable(Some(point));
        let without = damage_is_cut(&slot_left_in_cache_then_torn(last));
        disable(None);
        assert!(
            !with,
            "{last:?}: acknowledged records cut with every sync in place"
        );
        assert!(without, "{last:?}: removing {point:?} went unnoticed");
    }
}
