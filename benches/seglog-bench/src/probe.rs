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

/// The disk's floor for a scattered read: `reads` random 4 KiB reads (`O_DIRECT`, so the
/// page cache plays no part) from `threads` threads, spread over `files` (a log's segment
/// files: the same disk, the same extents). The time of the whole batch, median of 3: no
/// read of that many scattered records can be faster on this disk, whatever it issues.
pub fn random_read_floor(
    files: &[std::path::PathBuf],
    reads: usize,
    threads: usize,
) -> Result<Duration> {
    use std::os::unix::fs::OpenOptionsExt;
    const BLOCK: u64 = 4096;
    let opened = files
        .iter()
        .map(|path| {
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECT)
                .open(path)?;
            let blocks = file.metadata()?.len() / BLOCK;
            Ok((file, blocks))
        })
        .collect::<Result<Vec<_>>>()?;
    let opened: Vec<_> = opened
        .into_iter()
        .filter(|(_, blocks)| *blocks > 0)
        .collect();
    anyhow::ensure!(!opened.is_empty(), "no file to read the floor from");
    let threads = threads.clamp(1, reads.max(1));
    let mut times = Vec::new();
    for round in 0..3u64 {
        let t = Instant::now();
        std::thread::scope(|scope| -> Result<()> {
            let workers: Vec<_> = (0..threads)
                .map(|w| {
                    let opened = &opened;
                    scope.spawn(move || -> Result<()> {
                        // O_DIRECT wants a block-aligned buffer.
                        let mut buffer = vec![0u8; 2 * BLOCK as usize];
                        let skip = buffer.as_ptr().align_offset(BLOCK as usize);
                        let block = &mut buffer[skip..skip + BLOCK as usize];
                        let mut state =
                            ((round << 32) | w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                        for _ in (w..reads).step_by(threads) {
                            // xorshift64: a spread of offsets, no more.
                            state ^= state << 13;
                            state ^= state >> 7;
                            state ^= state << 17;
                            let (file, blocks) = &opened[(state % opened.len() as u64) as usize];
                            file.read_exact_at(block, (state >> 8) % blocks * BLOCK)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for worker in workers {
                worker
                    .join()
                    .map_err(|_| anyhow::anyhow!("a floor reader panicked"))??;
            }
            Ok(())
        })?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[1])
}
