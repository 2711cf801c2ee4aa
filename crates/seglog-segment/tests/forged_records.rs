//! What a tenant controls — ids and payload bytes — must not let it forge a record: a payload
//! that holds the bytes of a record must never check out as one, and payloads crafted to look
//! like record headers must not make the torn-tail look-ahead slower than linear.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog_segment::format::{EncodedRecord, EventBatch, RECORD_HEADER_LEN};
use seglog_segment::inspect::later_durable_record;
use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::{SegmentLog, SegmentOptions};

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 64 << 10,
        max_record_size_bytes: 32 << 10,
        ..SegmentOptions::default()
    }
}

fn batch<'a>(payloads: &'a [&'a [u8]]) -> EventBatch<'a, &'a [u8]> {
    EventBatch {
        encoding: 0,
        execution_id: b"tenant-exec",
        tenant_id: b"evil",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads,
    }
}

/// A record a tenant can compute: salted the way format version 2 salted every record, with
/// the segment number (1 for the first segment), vouching for LSNs far ahead.
fn forged_record(salt_guess: u64) -> Vec<u8> {
    let lsn = 1 << 40;
    EncodedRecord::new(&batch(&[b"forged"]), u32::MAX)
        .unwrap()
        .seal(salt_guess, lsn, lsn - 1)
}

#[test]
fn a_payload_holding_a_record_cannot_vouch_for_a_torn_write_before_it() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let acked = log.append(&batch(&[b"acknowledged"])).unwrap();
    // One commit round: an ordinary record, then the tenant's record whose payload carries
    // forged records (every salt a tenant could guess: the segment number, 0, 1, 2).
    let forged: Vec<u8> = (0..4).flat_map(forged_record).collect();
    let torn = log
        .submit(log.encode(&batch(&[b"torn by the power cut"])).unwrap())
        .unwrap();
    let carrier = log
        .submit(log.encode(&batch(&[&forged[..]])).unwrap())
        .unwrap();
    log.wait_durable(carrier.lsn).unwrap();
    let path = log.segments()[0].path.clone();
    drop(log); // the process dies without closing
               // The power fails; of the last round, the first record is torn, the second survives.
    let cut = fs.crash(CrashMode::KeepUnsynced);
    let mut bytes = cut.read_file(&path).unwrap();
    let at = torn.position.offset as usize;
    bytes[at + 8..at + 24].fill(0xAB);
    cut.replace_file(&path, bytes).unwrap();

    let (log, report) = SegmentLog::open(cut, "/log", opts(), &mut ())
        .unwrap_or_else(|e| panic!("a tenant's payload made the log unopenable: {e}"));
    let lsns: Vec<u64> = log
        .records()
        .unwrap()
        .map(|r| r.unwrap().view().lsn())
        .collect();
    assert_eq!(
        lsns,
        vec![acked.lsn],
        "the torn tail is cut, the acknowledged record kept"
    );
    assert_eq!(
        report.torn_tail.map(|t| t.offset),
        Some(torn.position.offset)
    );
}

/// `n` fake record headers back to back, each claiming to run to the end of the buffer and
/// to vouch for the LSN after `last_good`.
fn fake_headers(len: usize, last_good: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    let mut at = 0;
    while at + RECORD_HEADER_LEN <= len {
        let h = &mut bytes[at..at + RECORD_HEADER_LEN];
        h[..4].copy_from_slice(&((len - at) as u32).to_le_bytes());
        h[8..16].copy_from_slice(&(last_good + 2).to_le_bytes());
        h[16..24].copy_from_slice(&(last_good + 1).to_le_bytes());
        h[40] = 1;
        at += RECORD_HEADER_LEN;
    }
    bytes
}

#[test]
fn the_look_ahead_gives_up_on_crafted_headers_instead_of_checksumming_them_all() {
    // 4 MiB of fake headers: checksumming each would cost ~170 GB of CRC. The search must
    // end (the test would run for hours otherwise) and prove nothing.
    let bytes = fake_headers(4 << 20, 10);
    assert_eq!(later_durable_record(&bytes, 0, 0x5eed, 10), None);
}

#[test]
fn the_look_ahead_finds_a_real_proof_and_random_bytes_prove_nothing() {
    use rand::{Rng, SeedableRng};
    let seed = 0x5106_2026;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut bytes = vec![0u8; 1 << 20];
    rng.fill(&mut bytes[..]);
    assert_eq!(
        later_durable_record(&bytes, 0, 7, 1000),
        None,
        "seed {seed}: random bytes proved something"
    );
    // A real record, salted right, behind the noise.
    let real = EncodedRecord::new(&batch(&[b"real"]), u32::MAX)
        .unwrap()
        .seal(7, 1002, 1001);
    let at = bytes.len() - real.len() - 100;
    bytes[at..at + real.len()].copy_from_slice(&real);
    assert_eq!(later_durable_record(&bytes, 0, 7, 1000), Some((at, 1002)));
}

#[test]
fn a_checksum_valid_record_at_the_end_of_the_lsn_space_is_refused_without_overflow() {
    use seglog_segment::format::SegmentHeader;
    for lsn in [u64::MAX, u64::MAX - 1, 1 << 62] {
        let fs = SimFs::new();
        let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
        let kept = log.append(&batch(&[b"kept"])).unwrap();
        let info = log.segments()[0].clone();
        drop(log); // no close: no commit marker after the record
        let mut bytes = fs.read_file(&info.path).unwrap();
        let salt = SegmentHeader::decode(&bytes).unwrap().record_salt();
        let evil = EncodedRecord::new(&batch(&[b"end of time"]), u32::MAX)
            .unwrap()
            .seal(salt, lsn, kept.lsn);
        let end = info.data_end as usize;
        bytes[end..end + evil.len()].copy_from_slice(&evil);
        fs.replace_file(&info.path, bytes).unwrap();
        let (log, report) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ())
            .unwrap_or_else(|e| panic!("LSN {lsn}: {e}"));
        assert_eq!(
            report.last_lsn, kept.lsn,
            "LSN {lsn} was taken for a record"
        );
        assert_eq!(log.append(&batch(&[b"next"])).unwrap().lsn, kept.lsn + 1);
    }
}
