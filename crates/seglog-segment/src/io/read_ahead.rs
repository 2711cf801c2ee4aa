//! Read-ahead hints for real files: start reading many ranges from the disk at once, so that
//! a cold read waits for the disk about once instead of once per page.
//!
//! Why: a read through a memory map faults its pages in one at a time, and each fault of an
//! uncached page is a synchronous disk read (with the kernel's read-around, of up to
//! `read_ahead_kb` around the page: megabytes of the log for a 300-byte record).
//! `POSIX_FADV_WILLNEED` queues the reads of exactly the ranges asked for and returns at
//! once; the faults that follow find the pages cached or in flight, and the disk works on
//! all of them together. What must hold: a hint never changes what a read returns (it only
//! fills the page cache from the file), and it never fails a read (callers ignore its
//! errors).

use std::fs::File;
use std::io;

/// Most bytes asked for in one `posix_fadvise` call: the kernel reads at most the device's
/// read-ahead window (or its largest request) per call and silently drops the rest, so long
/// ranges are asked for in pieces. 1 MiB is below the window of common devices.
const MAX_HINT_BYTES: u64 = 1 << 20;

/// How many of the ranges are probed to tell a warm cache from a cold one.
const PROBES: usize = 8;

/// True when every probed byte is in the page cache: then the read is taken to be warm and
/// the hints are skipped, which would otherwise cost a system call per range for nothing.
/// Up to [`PROBES`] bytes are probed, spread evenly over the ranges taken end to end (the
/// first byte and the last range included), so one long range is probed along its length
/// too. A probe is a one-byte `preadv2(RWF_NOWAIT)`, which fails with `EAGAIN` instead of
/// reading the disk. Where the kernel cannot tell, the answer is false.
fn looks_cached(file: &File, ranges: &[(u64, u64)]) -> bool {
    let total: u64 = ranges
        .iter()
        .fold(0u64, |sum, &(_, len)| sum.saturating_add(len));
    if total == 0 {
        return true;
    }
    let probes = (PROBES as u64).min(total);
    (0..probes).all(|k| {
        // The k-th probe's distance into the concatenated ranges.
        let mut skip = if probes == 1 {
            0
        } else {
            k * (total - 1) / (probes - 1)
        };
        let Some(offset) = ranges.iter().find_map(|&(offset, len)| {
            if skip < len {
                Some(offset + skip)
            } else {
                skip -= len;
                None
            }
        }) else {
            return false;
        };
        let mut byte = [0u8; 1];
        matches!(
            rustix::io::preadv2(
                file,
                &mut [io::IoSliceMut::new(&mut byte)],
                offset,
                rustix::io::ReadWriteFlags::NOWAIT,
            ),
            Ok(1)
        )
    })
}

/// Asks the kernel to start reading `ranges` (offset, length) unless they look cached.
/// Returns whether reads were asked for.
///
/// Ranges are cut to the file's length first: nothing past it can be read, and a length from
/// a damaged field must not turn into billions of system calls.
pub(crate) fn will_need(file: &File, ranges: &[(u64, u64)]) -> io::Result<bool> {
    let file_len = file.metadata()?.len();
    let ranges: Vec<(u64, u64)> = ranges
        .iter()
        .filter(|&&(offset, len)| offset < file_len && len > 0)
        .map(|&(offset, len)| (offset, len.min(file_len - offset)))
        .collect();
    if ranges.is_empty() || looks_cached(file, &ranges) {
        return Ok(false);
    }
    for &(offset, len) in &ranges {
        let end = offset.saturating_add(len);
        let mut at = offset;
        while at < end {
            let piece = (end - at).min(MAX_HINT_BYTES);
            rustix::fs::fadvise(
                file,
                at,
                std::num::NonZeroU64::new(piece),
                rustix::fs::Advice::WillNeed,
            )?;
            at += piece;
        }
    }
    Ok(true)
}
