//! Review 36: two backups of one log into the same (empty) destination, both past
//! `prepare_destination` before either wrote a file. The first reports success; the
//! second's `download_checked` finds the first's downloaded segment there (create_new:
//! AlreadyExists) and, on that failure, removes the file it did not create: the successful
//! backup silently loses an offloaded segment.
//!
//! Since, the destination is locked (its `LOCK`) from the emptiness check to the end of the
//! backup, so the second of two backups into it at once is refused with
//! `DestinationNotEmpty`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::offload::*;

use bytes::Bytes;
use seglog::{OffloadedSegment, SegmentSource, SourceError};
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[derive(Default, Debug)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}
impl Gate {
    fn wait(&self) {
        let mut g = self.open.lock().unwrap();
        while !*g {
            g = self.cv.wait(g).unwrap();
        }
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

#[derive(Debug)]
struct Gated {
    inner: Arc<MapSource>,
    calls: AtomicU64,
    /// Call 1 waits on `first`; call `n + 1` waits on `second`.
    n: u64,
    first: Gate,
    second: Gate,
}

impl SegmentSource for Gated {
    fn read_ranges(
        &self,
        segment: &OffloadedSegment,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Bytes>, SourceError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if call == 1 {
            self.first.wait();
        }
        if call == self.n + 1 {
            self.second.wait();
        }
        self.inner.read_ranges(segment, ranges)
    }
}

#[test]
fn a_second_backup_into_the_same_destination_removes_the_firsts_downloaded_segment() {
    let (fs, source, expected) = shipped_log();
    let writer = open(&fs, &source).unwrap();
    let n = offload_local(&writer, &source) as u64;
    assert!(n >= 2);
    let gated = Arc::new(Gated {
        inner: source.clone(),
        calls: AtomicU64::new(0),
        n,
        first: Gate::default(),
        second: Gate::default(),
    });
    writer.set_segment_source(gated.clone());

    // C holds the backup's locks, blocked in its first download.
    let c = {
        let w = writer.clone();
        std::thread::spawn(move || w.backup_blocking("/c"))
    };
    while gated.calls.load(Ordering::SeqCst) < 1 {
        std::thread::sleep(Duration::from_millis(5));
    }
    // A and B: both find /dest empty, then wait for the locks.
    let a = {
        let w = writer.clone();
        std::thread::spawn(move || w.backup_blocking("/dest"))
    };
    let b = {
        let w = writer.clone();
        std::thread::spawn(move || w.backup_blocking("/dest"))
    };
    std::thread::sleep(Duration::from_millis(300));
    gated.first.open();
    c.join().unwrap().unwrap();
    // The first of A/B is in its first download: its local files are in /dest. The writer
    // rolls meanwhile (appends go on during a backup).
    while gated.calls.load(Ordering::SeqCst) < n + 1 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = writer.segments().last().unwrap().number;
    let mut i = 1000;
    while writer.segments().last().unwrap().number == before {
        append_some(&writer, i, 5);
        i += 5;
    }
    gated.second.open();
    let (ra, rb) = (a.join().unwrap(), b.join().unwrap());
    eprintln!("A: {ra:?}\nB: {rb:?}");
    let ok = [&ra, &rb].into_iter().filter(|r| r.is_ok()).count();
    // The destination is locked from its emptiness check to the end of the backup: the
    // second is refused, whichever it is, and touches nothing (review 36's open item).
    assert_eq!(
        ok, 1,
        "exactly one of two backups into one destination succeeds"
    );
    let refused = [ra, rb].into_iter().find_map(Result::err).unwrap();
    assert!(
        matches!(
            refused,
            seglog::Error::Segment(seglog_segment::Error::DestinationNotEmpty { .. })
        ),
        "{refused}"
    );
    // What the copy serves when opened on its own (no source).
    match seglog::Log::open_with_fs(fs.clone(), "/dest", opts()) {
        Ok(copy) => {
            let got = common::dump(&copy, &TENANTS);
            let events = |d: &common::Dump| d.values().flatten().map(|e| e.2.len()).sum::<usize>();
            eprintln!(
                "copy opens: {} events (expected at least {})",
                events(&got),
                events(&expected)
            );
            copy.close().unwrap();
        }
        Err(e) => eprintln!("copy does not open: {e}"),
    }
    // The successful backup's copy must be whole: every offloaded segment's file is there.
    let names = fs.file_names(Path::new("/dest"));
    for s in writer.offloaded_segments() {
        let name = s.first_lsn;
        assert!(
            names.iter().any(|n| n.strip_suffix(".seg").and_then(|x| x.parse::<u64>().ok()) == Some(name)),
            "a backup reported Ok, yet offloaded segment {} (first LSN {name}) is gone from its copy: {names:?}",
            s.number
        );
    }
    writer.close().unwrap();
    let _ = expected;
}
