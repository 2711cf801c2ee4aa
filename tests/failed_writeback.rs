//! A real failed writeback, a restart, then a power cut.
//!
//! The log lives on an ext4 or XFS image on a thin-provisioned disk (`ThinDisk`: the image
//! sits on a tmpfs barely larger than the blocks in use, so new data needs room there). A
//! first process appends and gets acknowledgements; then the tmpfs is filled, and its next
//! append — 32 KiB, over several pages — fails: the kernel's writeback of those pages fails
//! (the loop device gets ENOSPC from the tmpfs), its `fdatasync` returns the error, and the
//! log must be poisoned. Then, without a power cut, room is made and a second process opens
//! the log and appends more. Then the power fails (`FS_IOC_SHUTDOWN`, no journal flush). After
//! remount the log must open, with every append either process acknowledged.
//!
//! The trap is Linux's handling of a failed writeback ("fsyncgate"): the pages are marked
//! clean and keep their contents, so the second process reads from the page cache records
//! that never reached the disk, and one more `fdatasync` reports success without writing
//! them. A recovery that trusts what it reads appends after records that are not on disk;
//! after the power cut they are zeros, and the second process's acknowledged records after
//! them prove the hole was acknowledged data. The same scenario with the page cache dropped
//! between the two processes (`POSIX_FADV_DONTNEED`) shows that the page cache is the
//! difference: the second process then sees the torn record and cuts it.
//!
//! On ext4 (Linux 6.18) it is worse than stale pages: the failed writeback leaves the
//! preallocated (unwritten) extent unconverted while the cached page's buffers say "mapped";
//! when the second process dirties that page again, ext4 writes it to the disk without
//! converting the extent, `fdatasync` returns 0, and after the cache is gone the page reads as
//! zeros. So a recovery that rewrites cached pages in place still loses them on ext4: what
//! recovery keeps must come from the disk, and what it cuts must be cut (truncated).
//!
//! Needs root, loop devices, tmpfs, mkfs.ext4 and mkfs.xfs; elsewhere each test says why it
//! skips and passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::Log;
use seglog_tests::check_acks;
use seglog_tests::kernel_fs::{evict_page_cache, skip, FsKind, ThinDisk};
use seglog_tests::segment_snapshot::SegmentSnapshot;
use seglog_tests::writeback_protocol::{writeback_options, ScriptedChild};

/// What happens to the page cache of the log's files between the two processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageCache {
    /// Nothing: the second process reads the clean pages the failed writeback left behind.
    Kept,
    /// Dropped: the second process reads what is on the disk.
    Dropped,
}

/// Acknowledged appends of the first process before the disk fills, and of the second.
const FIRST_APPENDS: usize = 200;
const SECOND_APPENDS: usize = 300;

#[test]
fn acknowledged_appends_survive_a_failed_writeback_a_restart_and_a_power_cut_on_ext4() {
    restart_after_a_failed_writeback(
        FsKind::Ext4,
        PageCache::Kept,
        "acknowledged_appends_survive_a_failed_writeback_a_restart_and_a_power_cut_on_ext4",
    );
}

#[test]
fn acknowledged_appends_survive_a_failed_writeback_a_restart_and_a_power_cut_on_xfs() {
    restart_after_a_failed_writeback(
        FsKind::Xfs,
        PageCache::Kept,
        "acknowledged_appends_survive_a_failed_writeback_a_restart_and_a_power_cut_on_xfs",
    );
}

#[test]
fn with_the_page_cache_dropped_a_restart_after_a_failed_writeback_keeps_every_ack_on_ext4() {
    restart_after_a_failed_writeback(
        FsKind::Ext4,
        PageCache::Dropped,
        "with_the_page_cache_dropped_a_restart_after_a_failed_writeback_keeps_every_ack_on_ext4",
    );
}

#[test]
fn with_the_page_cache_dropped_a_restart_after_a_failed_writeback_keeps_every_ack_on_xfs() {
    restart_after_a_failed_writeback(
        FsKind::Xfs,
        PageCache::Dropped,
        "with_the_page_cache_dropped_a_restart_after_a_failed_writeback_keeps_every_ack_on_xfs",
    );
}

fn image_mib(kind: FsKind) -> u64 {
    kind.min_image_mib().max(64)
}

fn restart_after_a_failed_writeback(kind: FsKind, cache: PageCache, test: &str) {
    let mut disk = match ThinDisk::new(kind, image_mib(kind)) {
        Ok(disk) => disk,
        Err(why) => return skip(test, &why),
    };
    let dir = disk.fs().path().join("log");
    let exe = env!("CARGO_BIN_EXE_seglog-writeback-child");

    // With the page cache dropped the test proves the failed append is not read back: that
    // append's own writeback must be the one that fails, so nothing may provision its space
    // first (zeros ahead of the tail would). With the cache kept, zeros ahead stay on: every
    // ack must survive whichever writeback fails.
    let args: &[&str] = match cache {
        PageCache::Dropped => &["no-zeroing"],
        PageCache::Kept => &[],
    };
    // 1. The first process: acknowledged appends while the disk has room.
    let mut first = ScriptedChild::start_with(exe, &dir, args);
    if let Err(e) = first.opened() {
        panic!("{kind}: the first process cannot open a new log: {e}");
    }
    let out = first.run(&format!("append own-a {FIRST_APPENDS}"));
    assert_eq!(
        out.acks.len(),
        FIRST_APPENDS,
        "{kind}: an append failed while the disk had room: {:?}",
        out.failed
    );
    let mut acks = out.acks;
    // Everything written so far is backed, metadata included; then the disk runs out.
    disk.fs().sync();
    let filled = disk.exhaust();
    let out = first.run("until-failure");
    acks.extend(out.acks);
    let Some(failure) = out.failed else {
        panic!("{kind}: no append failed after the disk ran out of space")
    };
    // The failed writeback surfaces in fdatasync, and poisons the log.
    assert!(
        failure.poisoned,
        "{kind}: the failed append did not poison the log: {}",
        failure.error
    );
    match out.then {
        Some(Err(then)) => assert!(
            then.poisoned,
            "{kind}: the append after the failure failed, but not as poisoned: {}",
            then.error
        ),
        other => panic!("{kind}: the append after the failure was not refused: {other:?}"),
    }
    // The first process ends (SIGKILL: a poisoned log has nothing left to write).
    drop(first);

    // 2. No power cut. Room again; the restarted process opens the log and appends.
    disk.replenish();
    if cache == PageCache::Dropped {
        evict_page_cache(&dir);
    }
    let mut second = ScriptedChild::start_with(exe, &dir, args);
    let opened = match second.opened() {
        Ok(opened) => opened,
        Err(e) => panic!("{kind}: the restarted process cannot open the log: {e}"),
    };
    if cache == PageCache::Dropped {
        // Whole pages of the failed append never reached the disk: read from the disk, it
        // cannot be there. (Proves the eviction worked.)
        assert_eq!(
            opened.big_events, 0,
            "{kind}: with the page cache dropped, the restarted process still reads the \
             append whose writeback failed"
        );
    }
    let out = second.run(&format!("append own-b {SECOND_APPENDS}"));
    assert_eq!(
        out.acks.len(),
        SECOND_APPENDS,
        "{kind}: the restarted process failed an append: {:?}",
        out.failed
    );
    acks.extend(out.acks);

    // 3. The power fails.
    disk.fs().shut_down();
    drop(second);
    disk.fs_mut().unmount();
    disk.fs_mut().mount().unwrap();
    let before = SegmentSnapshot::take(&dir);
    let restart = format!(
        "the first process's failed append: {}; the restarted process ({}) found {} event(s) \
         of the failed append's execution, cut {} torn-tail bytes and then acknowledged \
         {SECOND_APPENDS} appends",
        failure.error,
        match cache {
            PageCache::Kept => "page cache kept",
            PageCache::Dropped => "page cache dropped",
        },
        opened.big_events,
        opened.torn_tail_bytes,
    );
    let log = Log::open_blocking(&dir, writeback_options()).unwrap_or_else(|e| {
        panic!(
            "{kind}: after the power cut the log does not open: {e}\n{restart}\n\
             the last segment before this open: {before}"
        )
    });
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_acks(&log, &acks, &format!("{kind}, after the power cut"))
    }));
    if let Err(e) = checked {
        eprintln!("{restart}\nthe last segment before the open: {before}");
        std::panic::resume_unwind(e);
    }
    eprintln!(
        "{kind}: {} acknowledged appends kept, {FIRST_APPENDS} before a failed writeback \
         ({filled} bytes filled the disk); {restart}",
        acks.len()
    );
}
