//! Review 69: a clustered segment whose file was altered so that two records of *different*
//! executions carry the same LSN (checksums made to match: the salt is in the header).
//!
//! docs/design.md ("Out of order is corruption"): a record out of order must fail a global
//! read with `Error::Corruption` rather than come out of order, since global positions are
//! strictly increasing and never shared. In a clustered segment the global read only checks
//! each record against the segment's first LSN and the next segment's (`check_in_order`),
//! never that an LSN comes once; the open does not read a segment its checkpoint describes,
//! and the checkpoint decoder leaves the "no LSN twice" rule to "where the segment itself is
//! read". The global read reads it (after the checkpoint's table fails to match) and hands
//! out two records at one position.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::{CheckpointMode, CompactOptions, Log, Options};
use seglog_segment::format::SegmentHeader;

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(8192)
        .max_record_size_bytes(Some(2048))
        .checkpoints(CheckpointMode::Inline)
}

fn u32_at(b: &[u8], o: usize) -> usize {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize
}

/// The record at `at` gets `lsn`, and a checksum that matches again (format.md §3.1: CRC-32
/// of the salt, the length field and everything after the checksum).
fn set_lsn(bytes: &mut [u8], at: usize, lsn: u64, salt: u64) {
    let len = u32_at(bytes, at);
    bytes[at + 8..at + 16].copy_from_slice(&lsn.to_le_bytes());
    // `durable_through_lsn` stays below the record's own LSN.
    let durable = u64::from_le_bytes(bytes[at + 16..at + 24].try_into().unwrap());
    bytes[at + 16..at + 24].copy_from_slice(&durable.min(lsn - 1).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&salt.to_le_bytes());
    crc.update(&bytes[at..at + 4]);
    crc.update(&bytes[at + 8..at + len]);
    let crc = crc.finalize();
    bytes[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn two_records_of_one_global_position_in_a_clustered_segment_are_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    // Two executions, interleaved, over several segments.
    for i in 0..60u32 {
        for e in ["exec-a", "exec-b"] {
            let body = format!("{e} {i} {}", "x".repeat(200));
            log.append_blocking(e, "tenant", body.as_bytes()).unwrap();
        }
    }
    let plan = policy::cluster_sealed_segments(&log.compaction_view(false).unwrap());
    log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    let target = log.segments().into_iter().find(|s| s.clustered).unwrap();
    let before = log.read_global(0, usize::MAX).unwrap();
    assert!(before.windows(2).all(|w| w[0].lsn < w[1].lsn));
    log.close().unwrap();

    // The first record of the first group (exec-a's) and the first of the second group
    // (exec-b's): exec-b's takes exec-a's LSN. Each execution's LSNs still increase.
    let mut bytes = std::fs::read(&target.path).unwrap();
    let salt = SegmentHeader::decode(&bytes).unwrap().record_salt();
    let first = 64;
    let first_lsn = u64::from_le_bytes(bytes[first + 8..first + 16].try_into().unwrap());
    let exec_at = |b: &[u8], at: usize| -> Vec<u8> {
        let len = b[at + 42] as usize;
        b[at + 48..at + 48 + len].to_vec()
    };
    let first_exec = exec_at(&bytes, first);
    let mut at = first;
    while exec_at(&bytes, at) == first_exec {
        at += u32_at(&bytes, at);
    }
    let other_lsn = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
    assert!(other_lsn > first_lsn);
    set_lsn(&mut bytes, at, first_lsn, salt);
    std::fs::write(&target.path, &bytes).unwrap();

    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    match log.read_global(0, usize::MAX) {
        Err(e @ (seglog::Error::Corruption(_) | seglog::Error::Segment(_))) => {
            assert!(
                e.to_string().contains(&format!("LSN {first_lsn}")),
                "the error names the shared position: {e}"
            )
        }
        Err(other) => panic!("an error, but not a corruption: {other}"),
        Ok(records) => {
            let lsns: Vec<u64> = records.iter().map(|r| r.lsn).collect();
            assert!(
                lsns.windows(2).all(|w| w[0] < w[1]),
                "global positions handed out twice (first LSN {first_lsn} of the clustered \
                 segment {}): {:?}",
                target.number,
                lsns.iter().filter(|&&l| l == first_lsn).collect::<Vec<_>>()
            );
        }
    }
}
