//! The manifest decoder on hostile bytes: random mutations of a valid manifest never panic,
//! and whatever decodes still keeps the manifest's invariants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use object_store::path::Path;
use proptest::prelude::*;
use seglog_tier::{ActiveSegment, Manifest, ObjectRef, SegmentEntry, FORMAT_VERSION};

fn valid() -> Manifest {
    let entry = |n: u64, first: u64, last: u64| SegmentEntry {
        number: n,
        first_lsn: first,
        last_lsn: last,
        record_salt: 0xdead_beef_0000 + n,
        segment: ObjectRef {
            key: format!("p/segments/{n}.seg"),
            len: 4096,
            crc32: 7,
        },
        checkpoint: n.is_multiple_of(2).then(|| ObjectRef {
            key: format!("p/checkpoints/{n}.idx"),
            len: 100,
            crc32: 9,
        }),
    };
    Manifest {
        format_version: FORMAT_VERSION,
        manifest_id: 5,
        writer_epoch: 3,
        writer_nonce: "00112233445566778899aabbccddeeff".into(),
        created_unix_millis: 1,
        segments: vec![entry(1, 1, 10), entry(2, 12, 40), entry(4, 41, 41)],
        active: Some(ActiveSegment {
            number: 5,
            first_lsn: 42,
            record_salt: 0xdead_beef_0005,
            chunks_epoch: 2,
        }),
        log_id: Some("0123456789abcdef0123456789abcdef".into()),
    }
}

proptest! {
    #[test]
    fn mutated_manifests_never_panic_and_what_decodes_keeps_the_invariants(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let key = Path::from("p/manifest/00000000000000000005");
        let mut bytes = valid().encode(&key).unwrap().to_vec();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(m) = Manifest::decode(&bytes, &key, &Path::from("p"), 5) {
            prop_assert_eq!(m.manifest_id, 5);
            prop_assert!(m.writer_epoch >= 1);
            let mut next = 1u64;
            for s in &m.segments {
                prop_assert!(s.first_lsn >= next);
                next = s.last_lsn.max(s.first_lsn).saturating_add(1);
                prop_assert!(s.segment.key.starts_with("p/"));
            }
            prop_assert!(next <= seglog_segment::format::LSN_LIMIT);
            if let Some(a) = &m.active {
                prop_assert!(m.format_version == FORMAT_VERSION);
                prop_assert!(a.first_lsn >= next);
                prop_assert!(a.chunks_epoch >= 1 && a.chunks_epoch <= m.writer_epoch);
                prop_assert!(a.first_lsn < seglog_segment::format::LSN_LIMIT);
            }
        }
    }
}

#[test]
fn the_valid_manifest_round_trips() {
    let key = Path::from("p/manifest/00000000000000000005");
    let m = valid();
    let decoded = Manifest::decode(&m.encode(&key).unwrap(), &key, &Path::from("p"), 5).unwrap();
    assert_eq!(decoded, m);
}

/// LSNs are below 2^62 (docs/format.md §3): a manifest naming one at or past the limit (a
/// segment's last LSN, or the active segment's first) is refused, or a lazy restore would
/// start its fresh segment there (review 19).
#[test]
fn a_manifest_naming_an_lsn_past_the_limit_is_refused() {
    let key = Path::from("p/manifest/00000000000000000005");
    let decode =
        |m: &Manifest| Manifest::decode(&m.encode(&key).unwrap(), &key, &Path::from("p"), 5);
    let limit = seglog_segment::format::LSN_LIMIT;
    let mut last_segment_past = valid();
    last_segment_past.active = None;
    last_segment_past.segments[2].last_lsn = u64::MAX - 1;
    assert!(decode(&last_segment_past).is_err());
    let mut at_the_limit = valid();
    at_the_limit.active = None;
    at_the_limit.segments[2].last_lsn = limit;
    assert!(decode(&at_the_limit).is_err());
    let mut below = valid();
    below.active = None;
    below.segments[2].last_lsn = limit - 1;
    assert!(decode(&below).is_ok());
    let mut active_past = valid();
    active_past.active.as_mut().unwrap().first_lsn = limit;
    assert!(decode(&active_past).is_err());
}

#[test]
fn a_manifest_whose_log_id_is_not_32_hex_digits_is_refused_and_one_without_is_read() {
    let prefix = Path::from("p");
    let key = Path::from("p/manifest/00000000000000000005");
    for bad in [
        "",
        "0123",
        "0123456789abcdef0123456789abcdeg",
        "0123456789abcdef0123456789abcdef0",
    ] {
        let mut m = valid();
        m.log_id = Some(bad.into());
        let bytes = m.encode(&key).unwrap();
        assert!(
            Manifest::decode(&bytes, &key, &prefix, 5).is_err(),
            "log_id {bad:?} was accepted"
        );
    }
    let mut m = valid();
    m.log_id = None;
    let bytes = m.encode(&key).unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains("log_id"));
    assert_eq!(Manifest::decode(&bytes, &key, &prefix, 5).unwrap(), m);
}
