//! The physical floor: one preallocated file, `write` + `fdatasync` per append under a mutex.
//! No group commit, no format: what a durable append costs the disk at the least. And the
//! durable-bandwidth floor: 1 MiB `pwrite` + `fdatasync` in a loop, for large records (W9).

use super::Peer;
use anyhow::Result;
use hdrhistogram::Histogram;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PREALLOCATED_BYTES: u64 = 1 << 30;

struct Floor {
    file: File,
    offset: Mutex<u64>,
}

/// A new file of `PREALLOCATED_BYTES`, reserved with `fallocate` and synced.
fn preallocated_file(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)?;
    rustix::fs::fallocate(
        &file,
        rustix::fs::FallocateFlags::empty(),
        0,
        PREALLOCATED_BYTES,
    )?;
    file.sync_all()?;
    Ok(file)
}

pub fn open(dir: &Path) -> Result<Box<dyn Peer>> {
    let file = preallocated_file(&dir.join("floor.dat"))?;
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
        let at = *offset % (PREALLOCATED_BYTES - payload.len() as u64);
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

/// Size of one write of the durable-bandwidth floor.
pub const BANDWIDTH_WRITE_BYTES: usize = 1 << 20;

/// The durable-bandwidth floor (W9's reference): one thread looping `pwrite` of 1 MiB +
/// `fdatasync` into a preallocated 1 GiB file (wrapping around) for `duration`. What the disk
/// can make durable per second when no format, no index and no group commit stands in the
/// way. Returns (writes, elapsed, latency of each write + fdatasync in µs).
pub fn bandwidth(dir: &Path, duration: Duration) -> Result<(u64, Duration, Histogram<u64>)> {
    let file = preallocated_file(&dir.join("bandwidth-floor.dat"))?;
    let block = vec![0x5Au8; BANDWIDTH_WRITE_BYTES];
    let slots = PREALLOCATED_BYTES / BANDWIDTH_WRITE_BYTES as u64;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut n = 0u64;
    while Instant::now() < deadline {
        let t0 = Instant::now();
        file.write_all_at(&block, (n % slots) * BANDWIDTH_WRITE_BYTES as u64)?;
        file.sync_data()?;
        hist.saturating_record(t0.elapsed().as_micros() as u64);
        n += 1;
    }
    Ok((n, started.elapsed(), hist))
}
