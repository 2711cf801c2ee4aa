//! Review 34: a backup of a read-only log takes the local segments (`backup_segments`) and
//! then, separately, lists the offloaded ones. Nothing keeps the view still in between: a
//! concurrent `refresh` (another thread of the reader's application) after the writer
//! rehydrated a segment moves that segment from the offloaded table to the local one, so it
//! is in neither listing the backup took, and the copy misses its records.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::offload::*;

use seglog::Log;
use std::path::Path;
use std::time::{Duration, Instant};

#[test]
fn a_refresh_during_a_read_only_backup_does_not_drop_a_rehydrated_segment() {
    let (fs, source, expected) = shipped_log();
    let writer = open(&fs, &source).unwrap();
    // Offload one early sealed segment; the rest stay local.
    let victim = writer.segments()[1].clone();
    writer
        .offload_segment(victim.number, &target(&source, victim.number))
        .unwrap();
    let local = writer.segments().len();
    assert!(local >= 3, "{local}");

    let reader = Log::open_read_only_with_fs(fs.clone(), "/log").unwrap();
    reader.set_segment_source(source.clone());
    assert_eq!(reader.offloaded_segments().len(), 1);

    // Slow syncs: the backup's copies of local segments and checkpoints take a while.
    fs.set_sync_latency(Duration::from_millis(40));
    let report = std::thread::scope(|s| {
        let bg = s.spawn(|| {
            // Once the backup has taken its list of local segments (its first file exists),
            // the writer brings the victim back and the reader's application refreshes.
            let deadline = Instant::now() + Duration::from_secs(20);
            while !fs
                .file_names(Path::new("/backup"))
                .iter()
                .any(|n| n.ends_with(".seg"))
            {
                assert!(Instant::now() < deadline);
                std::thread::sleep(Duration::from_millis(1));
            }
            writer.rehydrate_segment(victim.number).unwrap();
            reader.refresh().unwrap();
        });
        let report = reader.backup_blocking("/backup");
        bg.join().unwrap();
        report
    });
    fs.set_sync_latency(Duration::ZERO);
    let report = report.unwrap();
    writer.close().unwrap();

    let names = fs.file_names(Path::new("/backup"));
    let opened = Log::open_with_fs(fs.clone(), "/backup", opts())
        .map(|copy| common::dump(&copy, &TENANTS) == expected);
    let victim_name = seglog_segment::format::segment_file_name(victim.first_lsn);
    assert!(
        names.contains(&victim_name),
        "the rehydrated segment {} is missing from the backup ({report:?}): {names:?}; \
         the copy opens and serves the whole log: {opened:?}",
        victim.number
    );
    let copy = Log::open_with_fs(fs.clone(), "/backup", opts()).unwrap();
    assert_eq!(common::dump(&copy, &TENANTS), expected);
}
