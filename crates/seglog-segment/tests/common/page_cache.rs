//! Helpers of the tests of sealed segments leaving the page cache
//! (`SegmentOptions::cached_sealed_segments`): 1 MiB segments of 200 KiB records, and
//! probes of what the page cache holds.

use super::append_payload;
use seglog_segment::io::FileSystem;
use seglog_segment::{SegmentInfo, SegmentLog, SegmentOptions};
use std::path::Path;
use std::time::{Duration, Instant};

pub const SEGMENT: u64 = 1 << 20;
pub const RECORD: usize = 200 << 10;

/// 1 MiB segments, keeping the newest `keep` sealed segments cached.
pub fn opts(keep: Option<usize>) -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: SEGMENT,
        max_record_size_bytes: 512 << 10,
        cached_sealed_segments: keep,
        ..SegmentOptions::default()
    }
}

/// A payload of record `i`'s own bytes, so a page read back from the wrong place shows.
pub fn record(i: u64) -> Vec<u8> {
    (0..RECORD)
        .map(|k| 1 + ((i as usize * 31 + k) % 251) as u8)
        .collect()
}

/// Appends records `from`, `from + 1`, … until the log has `sealed` sealed segments;
/// returns the payloads and moves `from` past them.
pub fn fill<F: FileSystem>(log: &SegmentLog<F>, from: &mut u64, sealed: usize) -> Vec<Vec<u8>> {
    let mut written = Vec::new();
    while log.segments().iter().filter(|s| s.sealed).count() < sealed {
        let p = record(*from);
        append_payload(log, &p);
        written.push(p);
        *from += 1;
    }
    written
}

/// Waits (up to 10 s) until the background thread has dropped at least `bytes`; returns
/// what it dropped.
pub fn wait_dropped<F: FileSystem>(log: &SegmentLog<F>, bytes: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let dropped = log.stats().cache_dropped_bytes;
        if dropped >= bytes || Instant::now() > deadline {
            return dropped;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether the byte at `offset` of `path` is in the page cache: a one-byte
/// `preadv2(RWF_NOWAIT)` fails with `EAGAIN` instead of reading the disk.
pub fn cached(path: &Path, offset: u64) -> bool {
    let file = std::fs::File::open(path).unwrap();
    let mut byte = [0u8; 1];
    rustix::io::preadv2(
        &file,
        &mut [std::io::IoSliceMut::new(&mut byte)],
        offset,
        rustix::io::ReadWriteFlags::NOWAIT,
    )
    .is_ok()
}

/// Whether the pages of `segment` holding records (probed every 64 KiB) are all cached
/// (`Some(true)`), all uncached (`Some(false)`), or some of each (`None`). Asked of
/// `mincore`, which reads nothing: a read probe of an uncached page (`cached`) starts
/// readahead, so under load the later probes of one pass found pages the earlier ones
/// brought in (a CI run saw `None` for a dropped segment). The map is never touched, so it
/// maps no page and stops no drop.
#[allow(unsafe_code)]
pub fn residency(segment: &SegmentInfo) -> Option<bool> {
    let file = std::fs::File::open(&segment.path).unwrap();
    // SAFETY: the map is only handed to `mincore`, never read.
    let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    let page = 4096usize;
    let mut vec = vec![0u8; map.len().div_ceil(page)];
    // SAFETY: `map` is a live mapping of `map.len()` bytes and `vec` holds one byte per page.
    let rc = unsafe {
        libc::mincore(
            map.as_ptr() as *mut libc::c_void,
            map.len(),
            vec.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
    let probes: Vec<bool> = (4096..segment.data_end)
        .step_by(64 << 10)
        .map(|offset| vec[offset as usize / page] & 1 == 1)
        .collect();
    if probes.iter().all(|&c| c) {
        Some(true)
    } else if probes.iter().all(|&c| !c) {
        Some(false)
    } else {
        None
    }
}

pub fn data_bytes<'a>(segments: impl IntoIterator<Item = &'a SegmentInfo>) -> u64 {
    segments.into_iter().map(|s| s.data_end).sum()
}
