//! Test switches that remove one sync point at a time (cfg flag `seglog_teeth`: `RUSTFLAGS="--cfg seglog_teeth"`), so the crash tests
//! can show that each sync they rely on is really needed. Without the flag every switch
//! is a constant `false` and costs nothing.

/// The sync points of the segment layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SyncPoint {
    /// The fdatasync of each commit round.
    CommitFsync = 1,
    /// The fdatasync of a new segment's header.
    NewSegmentFsync = 2,
    /// The directory fsync after a segment is created.
    NewSegmentDirFsync = 3,
    /// The fdatasync of a segment being sealed.
    SealFsync = 4,
    /// The fdatasync, on open, of what a dead process left unsynced in the last segment.
    RecoveredTailFsync = 5,
    /// The fdatasync of a segment written by compaction, before the manifest names it.
    ReplacementSegmentFsync = 6,
    /// The directory fsync that commits a replacement manifest.
    ManifestDirFsync = 7,
    /// The directory fsync on open, before anything is appended to the recovered segment.
    RecoveredDirFsync = 8,
    /// The eviction, on open, of the cached pages of the last segment that nothing proves
    /// durable (so that recovery reads the disk there).
    RecoveredTailEvict = 9,
    /// The fsyncs of a new log directory's parents.
    NewDirParentFsync = 10,
    /// The directory fsync that makes a replacement's new segments' (temporary) names
    /// durable before the manifest that names them can be.
    ReplacementNamesDirFsync = 11,
    /// The fdatasync of the header written into a prepared next segment, before its rename.
    PreparedHeaderFsync = 12,
    /// The directory fsync after a prepared next segment is renamed into place.
    PreparedRenameDirFsync = 13,
    /// The fdatasync of a new tail bound (`TAIL_BOUND`), before the writer writes past the
    /// old one.
    TailBoundFsync = 14,
    /// The fdatasync, on open, of `TAIL_BOUND` (a slot a dead process wrote and never
    /// synced), before its cached pages are dropped.
    RecoveredTailBoundFsync = 15,
    /// The eviction, on open, of `TAIL_BOUND`'s cached pages (a slot whose sync failed stays
    /// there, never on the disk), so that the open reads the disk's slots.
    RecoveredTailBoundEvict = 16,
    /// The fdatasync `sync` makes itself under `SyncMode::Never`, where the commit rounds
    /// it waited for only wrote.
    ExplicitSyncFsync = 17,
}

#[cfg(seglog_teeth)]
static DISABLED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Removes `point` (or, with `None`, restores every point) for the whole process.
#[cfg(seglog_teeth)]
pub fn disable(point: Option<SyncPoint>) {
    DISABLED.store(
        point.map_or(0, |p| p as u8),
        std::sync::atomic::Ordering::SeqCst,
    );
}

/// True when `point` has been removed.
#[inline]
pub(crate) fn skipped(point: SyncPoint) -> bool {
    #[cfg(seglog_teeth)]
    {
        DISABLED.load(std::sync::atomic::Ordering::SeqCst) == point as u8
    }
    #[cfg(not(seglog_teeth))]
    {
        let _ = point;
        false
    }
}
