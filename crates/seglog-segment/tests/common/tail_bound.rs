//! Helpers of the tail bound's tests (`tail_bound.rs`, `teeth_tail_bound.rs`, review 38).

use seglog_segment::io::sim::SimFs;
use seglog_segment::io::FileSystem;
use seglog_segment::SegmentOptions;
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
