//! What the retention-by-size tests check a pass against: the bytes the log holds locally,
//! and the exact bytes a set of executions holds (a dry run's `bytes_reclaimed`, the
//! oracle a policy's estimate must come close to).

use seglog::compaction::Plan;
use seglog::io::FileSystem;
use seglog::{CompactOptions, Log};

/// The durable bytes of every local segment.
pub fn local_bytes<F: FileSystem + Clone>(log: &Log<F>) -> u64 {
    log.segments().iter().map(|s| s.data_end).sum()
}

/// Exact bytes the records of `ids` hold: what dropping them would reclaim.
pub fn exact_bytes<F: FileSystem + Clone, S: AsRef<str>>(log: &Log<F>, ids: &[S]) -> u64 {
    let plan = Plan {
        drop_executions: ids.iter().map(|s| s.as_ref().to_owned()).collect(),
        ..Plan::default()
    };
    log.compact_blocking(
        &plan,
        CompactOptions::default().dry_run(true),
        &mut |_, _| {},
    )
    .unwrap()
    .bytes_reclaimed
}
