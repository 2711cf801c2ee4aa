//! How fast is an fdatasync on this disk right now? Run before and after a benchmark: a
//! slow spell of the (virtual) disk shows up here and the run should be repeated.

use anyhow::Result;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Median of 200 × (4 KiB write + fdatasync) into a preallocated file.
pub fn fdatasync_p50(dir: &Path) -> Result<Duration> {
    let tmp = tempfile::tempdir_in(dir)?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(tmp.path().join("probe"))?;
    rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, 4 << 20)?;
    file.sync_all()?;
    let block = [0xA5u8; 4096];
    let mut samples = Vec::with_capacity(200);
    for i in 0..200u64 {
        let t = Instant::now();
        file.write_all_at(&block, (i % 1000) * 4096)?;
        file.sync_data()?;
        samples.push(t.elapsed());
    }
    samples.sort();
    Ok(samples[samples.len() / 2])
}

/// Sequential write bandwidth of the disk: 512 MiB in 1 MiB writes to a fresh file, then one
/// fdatasync; MB/s over the whole. Median of 3.
pub fn sequential_write_mb_s(dir: &Path) -> Result<f64> {
    let mut rates = Vec::new();
    for _ in 0..3 {
        let tmp = tempfile::tempdir_in(dir)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(tmp.path().join("seq"))?;
        let block = vec![0x5Au8; 1 << 20];
        let t = Instant::now();
        for i in 0..512u64 {
            file.write_all_at(&block, i << 20)?;
        }
        file.sync_data()?;
        rates.push(512.0 * 1048576.0 / t.elapsed().as_secs_f64() / 1e6);
    }
    rates.sort_by(f64::total_cmp);
    Ok(rates[1])
}
