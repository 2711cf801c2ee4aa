//! The physical floor: one file of written zeros, `write` + `fdatasync` per append under a
//! mutex. No group commit, no format: what a durable append costs the disk at the least. And
//! the durable-bandwidth floor: 1 MiB `pwrite` + `fdatasync` in a loop, for large records (W9).
//!
//! Both write into space already written (zeros, synced before the clock starts), wrapping
//! around at its end, so each `fdatasync` flushes data only. (Until 2026-12-06 the file was
//! reserved with `fallocate`: a write into unwritten extents made each `fdatasync` also
//! write the file's block map, which a log that keeps zeros ahead of its tail does not pay,
//! and the floor then ran slower than the logs measured against it.)

use super::Peer;
use anyhow::Result;
use hdrhistogram::Histogram;
use rustix::fs::Advice;
use std::fs::{File, OpenOptions};
use std::num::NonZeroU64;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The append floor's file: room for every workload's seconds of appends before wrapping.
const APPEND_FLOOR_BYTES: u64 = 64 << 20;
/// The bandwidth floor's file.
const BANDWIDTH_FLOOR_BYTES: u64 = 256 << 20;

struct Floor {
    file: File,
    offset: Mutex<u64>,
}

/// A new file of `len` bytes of written zeros, synced.
fn zeroed_file(path: &Path, len: u64) -> Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)?;
    let zeros = vec![0u8; BANDWIDTH_WRITE_BYTES];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(zeros.len() as u64);
        file.write_all_at(&zeros[..n as usize], at)?;
        at += n;
    }
    file.sync_all()?;
    Ok(file)
}

pub fn open(dir: &Path) -> Result<Box<dyn Peer>> {
    let file = zeroed_file(&dir.join("floor.dat"), APPEND_FLOOR_BYTES)?;
    Ok(Box::new(Floor {
        file,
        offset: Mutex::new(0),
    }))
}

impl Peer for Floor {
    fn append(&self, _execution: u64, payload: &[u8]) -> Result<()> {
        let mut offset = self
            .offset
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned mutex"))?;
        let at = wrapped_offset(*offset, payload.len() as u64, APPEND_FLOOR_BYTES);
        self.file.write_all_at(payload, at)?;
        self.file.sync_data()?;
        *offset = at + payload.len() as u64;
        Ok(())
    }

    fn append_batch(&self, execution: u64, payloads: &[&[u8]]) -> Result<()> {
        // The floor's batch: one write of the concatenation, one fdatasync.
        self.append(execution, &payloads.concat())
    }
}

/// Where the append floor writes `len` bytes next, given where the last write ended: at
/// `next`, wrapped around so the write stays inside the `file_len` bytes written before
/// the clock started; at 0 when no write that long fits (it then grows the file).
fn wrapped_offset(next: u64, len: u64, file_len: u64) -> u64 {
    match file_len.checked_sub(len) {
        Some(room) if room > 0 => next % room,
        _ => 0,
    }
}

/// Size of one write of the durable-bandwidth floor.
pub const BANDWIDTH_WRITE_BYTES: usize = 1 << 20;

/// What a floor loop measured: its writes, the time they took, and each one's latency (µs).
type LoopResult = (u64, Duration, Histogram<u64>);

/// Runs `step(n)` for n = 0, 1, … until `duration` has passed, timing each.
fn timed_loop(duration: Duration, mut step: impl FnMut(u64) -> Result<()>) -> Result<LoopResult> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut n = 0u64;
    while Instant::now() < deadline {
        let t0 = Instant::now();
        step(n)?;
        hist.saturating_record(t0.elapsed().as_micros() as u64);
        n += 1;
    }
    Ok((n, started.elapsed(), hist))
}

/// The durable-bandwidth floor (W9's reference): one thread looping `pwrite` of 1 MiB +
/// `fdatasync` into a file of 256 MiB of written zeros (wrapping around) for `duration`. What the disk
/// can make durable per second when no format, no index and no group commit stands in the
/// way. Returns (writes, elapsed, latency of each write + fdatasync in µs).
pub fn bandwidth(dir: &Path, duration: Duration) -> Result<LoopResult> {
    let file = zeroed_file(&dir.join("bandwidth-floor.dat"), BANDWIDTH_FLOOR_BYTES)?;
    let block = vec![0x5Au8; BANDWIDTH_WRITE_BYTES];
    let slots = BANDWIDTH_FLOOR_BYTES / BANDWIDTH_WRITE_BYTES as u64;
    timed_loop(duration, |n| {
        file.write_all_at(&block, (n % slots) * BANDWIDTH_WRITE_BYTES as u64)?;
        file.sync_data()?;
        Ok(())
    })
}

/// How far behind its end the appending floor drops its pages from the page cache: what
/// seglog keeps cached by default (two sealed 128 MiB segments).
const APPENDING_FLOOR_CACHED_BYTES: u64 = 256 << 20;

/// The appending floor (W9's second reference): one thread looping `pwrite` of 1 MiB at the
/// end of a new file + `fdatasync`, dropping its pages from the page cache
/// [`APPENDING_FLOOR_CACHED_BYTES`] behind the end (`POSIX_FADV_DONTNEED`). What a log must
/// do for new data, which [`bandwidth`] (rewriting cached pages of blocks written before)
/// never pays: on a guest whose free memory goes back to the host (`page_reporting`), new
/// pages cost several times the copy into them. Returns as [`bandwidth`].
pub fn appending_bandwidth(dir: &Path, duration: Duration) -> Result<LoopResult> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(dir.join("appending-floor.dat"))?;
    let block = vec![0x5Au8; BANDWIDTH_WRITE_BYTES];
    let len = BANDWIDTH_WRITE_BYTES as u64;
    timed_loop(duration, |n| {
        file.write_all_at(&block, n * len)?;
        file.sync_data()?;
        if let Some(behind) = (n * len).checked_sub(APPENDING_FLOOR_CACHED_BYTES) {
            rustix::fs::fadvise(&file, behind, NonZeroU64::new(len), Advice::DontNeed)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::wrapped_offset;

    #[test]
    fn append_floor_offsets_wrap_inside_the_file_and_never_underflow() {
        assert_eq!(wrapped_offset(0, 256, 1 << 20), 0);
        assert_eq!(wrapped_offset(1000, 256, 1 << 20), 1000);
        // A write that would pass the end starts again at the front.
        let at = wrapped_offset((1 << 20) - 100, 256, 1 << 20);
        assert!(at + 256 <= 1 << 20, "{at}");
        // Payloads as large as the file, or larger (64 MiB and up): no underflow.
        assert_eq!(wrapped_offset(5, 1 << 20, 1 << 20), 0);
        assert_eq!(wrapped_offset(5, 2 << 20, 1 << 20), 0);
    }
}
