use super::*;
use proptest::prelude::*;

fn sealed(payloads: &[&[u8]], salt: u64, lsn: u64) -> Vec<u8> {
    let batch = EventBatch {
        encoding: 0,
        execution_id: b"exec-1",
        tenant_id: b"tenant-a",
        first_seq: 10,
        timestamp_unix_nanos: 42,
        payloads,
    };
    EncodedRecord::new(&batch, DEFAULT_MAX_RECORD_SIZE)
        .map(|r| r.seal(salt, lsn, lsn - 1))
        .unwrap_or_else(|e| panic!("the test record does not encode: {e}"))
}

#[test]
fn record_round_trips_every_field() {
    let bytes = sealed(&[b"one", b"", b"three"], 3, 17);
    let RecordScan::Record(r) = decode_record(&bytes, 3, 1, u64::MAX) else {
        panic!("valid record refused");
    };
    assert_eq!(r.len(), bytes.len());
    assert_eq!(r.lsn(), 17);
    assert_eq!(r.durable_through_lsn(), 16);
    assert_eq!(r.execution_id(), b"exec-1");
    assert_eq!(r.tenant_id(), b"tenant-a");
    assert_eq!((r.first_seq(), r.last_seq(), r.event_count()), (10, 12, 3));
    assert_eq!(r.timestamp_unix_nanos(), 42);
    let events: Vec<&[u8]> = r.events().collect();
    assert_eq!(events, vec![&b"one"[..], b"", b"three"]);
    assert_eq!(r.event_range(2).map(|rg| &bytes[rg]), Some(&b"three"[..]));
    assert_eq!(r.event_range(3), None);
}

#[test]
fn record_from_another_segment_fails_the_salted_checksum() {
    let bytes = sealed(&[b"payload"], 3, 5);
    assert!(matches!(
        decode_record(&bytes, 4, 1, u64::MAX),
        RecordScan::Defect(RecordDefect::Checksum)
    ));
}

#[test]
fn every_bit_flip_and_every_truncation_is_detected() {
    let bytes = sealed(&[b"alpha", b"beta"], 9, 100);
    // The loops below prove something only about a record that decodes untouched.
    assert!(
        matches!(decode_record(&bytes, 9, 1, u64::MAX), RecordScan::Record(r) if r.len() == bytes.len()),
        "the pristine record is refused"
    );
    for bit in 0..bytes.len() * 8 {
        let mut b = bytes.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        assert!(
            !matches!(decode_record(&b, 9, 1, u64::MAX), RecordScan::Record(_)),
            "flip of bit {bit} accepted"
        );
    }
    for cut in 0..bytes.len() {
        assert!(!matches!(
            decode_record(&bytes[..cut], 9, 1, u64::MAX),
            RecordScan::Record(_)
        ));
    }
}

#[test]
fn limits_are_enforced_before_anything_is_written() {
    let big = [0u8; 100];
    let batch = EventBatch {
        encoding: 0,
        execution_id: b"e",
        tenant_id: b"t",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: &[&big[..]],
    };
    assert!(matches!(
        EncodedRecord::new(&batch, 100),
        Err(crate::Error::TooLarge { max: 100, .. })
    ));
    let long_id = vec![b'x'; 256];
    let bad = EventBatch {
        execution_id: &long_id,
        ..batch
    };
    assert!(matches!(
        EncodedRecord::new(&bad, u32::MAX),
        Err(crate::Error::InvalidRecord(_))
    ));
    let empty: EventBatch<'_, &[u8]> = EventBatch {
        encoding: 0,
        execution_id: b"e",
        tenant_id: b"t",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: &[],
    };
    assert!(matches!(
        EncodedRecord::new(&empty, u32::MAX),
        Err(crate::Error::InvalidRecord(_))
    ));
}

#[test]
fn lsn_must_increase() {
    let bytes = sealed(&[b"x"], 1, 5);
    assert!(matches!(
        decode_record(&bytes, 1, 6, u64::MAX),
        RecordScan::Defect(RecordDefect::LsnOrder)
    ));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_never_decode_by_accident(
        buf in proptest::collection::vec(any::<u8>(), 0..512),
        salt in any::<u64>(),
    ) {
        // Random bytes are vanishingly unlikely to carry a valid CRC; what must hold is
        // that decoding never panics or reads out of bounds.
        let _ = decode_record(&buf, salt, 0, u64::from(u32::MAX));
    }

    #[test]
    fn encode_decode_round_trip(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8),
        salt in 1u64..,
        lsn in 1u64..LSN_LIMIT,
    ) {
        let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
        let bytes = sealed(&refs, salt, lsn);
        match decode_record(&bytes, salt, lsn, u64::MAX) {
            RecordScan::Record(r) => {
                let got: Vec<&[u8]> = r.events().collect();
                prop_assert_eq!(got, refs);
            }
            other => prop_assert!(false, "decode failed: {:?}", other),
        }
    }
}

/// Short records are sealed by hashing them whole, long ones by combining a CRC of the body
/// taken at encode time: both give the checksum of docs/format.md §3.2 (salt, length, then
/// every byte from the LSN on), fields set after encoding included.
#[test]
fn both_ways_of_sealing_give_the_documented_checksum() {
    let body_len = |payload: usize| payload + (RECORD_HEADER_LEN - REC_KIND_OFFSET) + 6 + 8 + 4;
    let threshold_payload = COMBINED_CRC_MIN_BODY - body_len(0);
    let sizes = [
        0,
        1,
        300,
        threshold_payload - 1,
        threshold_payload,
        threshold_payload + 1,
        100_000,
    ];
    assert_eq!(body_len(threshold_payload), COMBINED_CRC_MIN_BODY);
    for size in sizes {
        let payload: Vec<u8> = (0..size).map(|i| (i * 7 + size) as u8).collect();
        let payloads: [&[u8]; 1] = [&payload];
        let batch = EventBatch {
            encoding: 0,
            execution_id: b"exec-1",
            tenant_id: b"tenant-a",
            first_seq: 10,
            timestamp_unix_nanos: 42,
            payloads: &payloads,
        };
        let mut record = EncodedRecord::new(&batch, DEFAULT_MAX_RECORD_SIZE).unwrap();
        assert_eq!(
            record.body_crc.is_some(),
            record.len() - REC_KIND_OFFSET >= COMBINED_CRC_MIN_BODY,
            "payload {size}"
        );
        record.set_first_seq(77);
        record.set_timestamp_unix_nanos(99);
        let (salt, lsn) = (0x1234_5678_9abc_def0u64, 501);
        let bytes = record.seal(salt, lsn, 500);
        let mut reference = Hasher::new();
        reference.update(&salt.to_le_bytes());
        reference.update(&bytes[REC_LEN_OFFSET..REC_LEN_OFFSET + 4]);
        reference.update(&bytes[REC_LSN_OFFSET..]);
        assert_eq!(
            bytes[REC_CRC_OFFSET..REC_CRC_OFFSET + 4],
            reference.finalize().to_le_bytes(),
            "payload {size}"
        );
        let RecordScan::Record(r) = decode_record(&bytes, salt, 1, u64::MAX) else {
            panic!("payload {size}: the sealed record is refused");
        };
        assert_eq!((r.first_seq(), r.timestamp_unix_nanos()), (77, 99));
    }
}
