// Regression test for a review finding (fixed): format v3's random salt is there so that "a tenant ... [cannot make] any crash
// make the log refuse to open" (docs/format.md §3.2). The new torn-tail look-ahead budget
// (inspect.rs `later_durable_record` / `claims_proof`) brings that back without any
// checksum: `claims_proof` trusts unchecked header fields, so a tenant payload made of fake
// record headers (kind 1, a length running to the end of the file, lsn just above the last
// good LSN, durable_through between) exhausts the budget, and a plain torn tail before the
// tenant's record (an unacknowledged write, the most ordinary crash) makes the default open
// fail with Corruption ("too costly to search ... open with RecoveryMode::Salvage"). One
// tenant can thus turn every crash into an outage for all tenants of the log until an
// operator salvages.
//! Review finding (see the comment above).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::{EventBatch, RECORD_HEADER_LEN};
use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::{SegmentLog, SegmentOptions};

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 64 << 10,
        max_record_size_bytes: 32 << 10,
        ..SegmentOptions::default()
    }
}

fn batch<'a>(tenant: &'a [u8], payloads: &'a [&'a [u8]]) -> EventBatch<'a, &'a [u8]> {
    EventBatch {
        encoding: 0,
        execution_id: b"exec",
        tenant_id: tenant,
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads,
    }
}

/// A payload of fake record headers that claim (without a valid checksum) to vouch for
/// LSNs around `lsn_guess`, each claiming a length that runs to `file_len`.
fn fake_headers(
    payload_len: usize,
    payload_offset_in_file: usize,
    file_len: usize,
    lsn_guess: u64,
) -> Vec<u8> {
    let mut bytes = vec![0u8; payload_len];
    let mut at = 0;
    while at + RECORD_HEADER_LEN <= payload_len {
        let len = (file_len - payload_offset_in_file - at - 1) as u32;
        let h = &mut bytes[at..at + RECORD_HEADER_LEN];
        h[..4].copy_from_slice(&len.to_le_bytes());
        h[8..16].copy_from_slice(&(lsn_guess + 1).to_le_bytes());
        h[16..24].copy_from_slice(&lsn_guess.to_le_bytes());
        h[40] = 1;
        at += RECORD_HEADER_LEN;
    }
    bytes
}

#[test]
fn a_tenant_payload_cannot_make_an_ordinary_torn_tail_refuse_to_open() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let acked = log.append(&batch(b"good", &[b"acknowledged"])).unwrap();
    // The last (unsynced) window: another tenant's record, then the evil tenant's.
    let torn = log
        .submit(
            log.encode(&batch(b"good", &[b"torn by the power cut"]))
                .unwrap(),
        )
        .unwrap();
    let payload_len = 16 << 10;
    // Where the payload will sit: after the carrier's header, ids and event table.
    let carrier_offset = (torn.position.offset as usize)
        + log
            .encode(&batch(b"good", &[b"torn by the power cut"]))
            .unwrap()
            .len();
    let payload_offset = carrier_offset + RECORD_HEADER_LEN + 4 + 4 + 4;
    let evil = fake_headers(payload_len, payload_offset, 64 << 10, acked.lsn + 1);
    let carrier = log
        .submit(log.encode(&batch(b"evil", &[&evil[..]])).unwrap())
        .unwrap();
    assert_eq!(carrier.position.offset as usize, carrier_offset);
    log.wait_durable(carrier.lsn).unwrap();
    let path = log.segments()[0].path.clone();
    drop(log); // the process dies
    let cut = fs.crash(CrashMode::KeepUnsynced);
    let mut bytes = cut.read_file(&path).unwrap();
    let at = torn.position.offset as usize;
    bytes[at + 8..at + 24].fill(0xAB); // the unacknowledged record is torn
    cut.replace_file(&path, bytes).unwrap();

    match SegmentLog::open(cut, "/log", opts(), &mut ()) {
        Ok((_, report)) => assert_eq!(
            report.torn_tail.map(|t| t.offset),
            Some(torn.position.offset)
        ),
        Err(e) => panic!("a tenant's payload made an ordinary torn tail unopenable: {e}"),
    }
}
