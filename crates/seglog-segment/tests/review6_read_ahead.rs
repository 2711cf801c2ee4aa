//! Review 6: read-ahead hints (`SegmentFile::will_need`) on real files. A hint never changes
//! what a read returns, never fails a read and must neither panic nor take unbounded time,
//! whatever ranges it is given: offsets past the end, empty ranges, lengths from a corrupt
//! length field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::io::{FileSystem, SegmentFile, StdFs};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `will_need(ranges)` on a small, cold file, on its own thread, with a deadline.
fn hint(ranges: Vec<(u64, u64)>) -> Result<std::io::Result<bool>, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("segment");
    let file = StdFs.create_new(&path).unwrap();
    file.write_all_at(&[1u8; 8192], 0).unwrap();
    file.sync_data().unwrap();
    // Cold: the probes must not find the pages cached (so the hints really go out).
    let _ = file.evict(0, 8192);
    let (tx, rx) = mpsc::channel();
    let described = format!("{ranges:?}");
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(move || file.will_need(&ranges));
        let _ = tx.send(outcome.map_err(|_| "panicked".to_owned()));
        drop(dir);
    });
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(r) => r.map_err(|p| format!("will_need({described}) {p}")),
        Err(_) => Err(format!("will_need({described}) did not return within 5 s")),
    }
}

#[test]
fn hints_of_odd_ranges_neither_panic_nor_hang() {
    let cases: Vec<Vec<(u64, u64)>> = vec![
        vec![(0, 0)],
        vec![(1 << 40, 4096)],
        vec![(u64::MAX, 1)],
        vec![(u64::MAX - 10, 100)],
        vec![(i64::MAX as u64 + 1, 4096)],
        // A length no record can have (say, read from a corrupt length field).
        vec![(0, u64::MAX)],
        vec![(0, 1 << 62)],
        vec![(0, u64::MAX), (4096, u64::MAX)],
    ];
    let mut failures = Vec::new();
    for ranges in cases {
        if let Err(e) = hint(ranges) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
