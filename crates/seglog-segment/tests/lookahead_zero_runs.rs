//! The torn-tail look-ahead skips runs of zeros a word at a time (a crashed prepared segment
//! is up to a whole segment of zeros past its data). Skipping must never step over a proof:
//! a real record or commit marker planted anywhere in zeros and scattered noise, block edges
//! and the very end of the buffer included, is found at its exact offset.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use seglog_segment::format::{encode_commit_marker, EncodedRecord, EventBatch};
use seglog_segment::inspect::later_durable_record;

const SALT: u64 = 7;
const LAST_GOOD: u64 = 1000;

fn proof(marker: bool) -> Vec<u8> {
    if marker {
        encode_commit_marker(SALT, LAST_GOOD + 2, LAST_GOOD + 1).to_vec()
    } else {
        let batch = EventBatch {
            encoding: 0,
            execution_id: b"exec",
            tenant_id: b"tenant",
            first_seq: 1,
            timestamp_unix_nanos: 0,
            payloads: &[&b"durable"[..]],
        };
        EncodedRecord::new(&batch, u32::MAX)
            .unwrap()
            .seal(SALT, LAST_GOOD + 2, LAST_GOOD + 1)
    }
}

proptest! {
    #[test]
    fn a_proof_in_zeros_and_noise_is_found_where_it_is(
        len in 200usize..20_000,
        from in 0usize..300,
        place in 0.0f64..=1.0,
        marker in any::<bool>(),
        noise in proptest::collection::vec((0usize..20_000, 1u8..=255), 0..40),
    ) {
        let proof = proof(marker);
        let mut bytes = vec![0u8; len];
        for (at, b) in noise {
            if at < len {
                bytes[at] = b;
            }
        }
        let latest = len - proof.len();
        prop_assume!(from <= latest);
        let at = from + ((latest - from) as f64 * place) as usize;
        bytes[at..at + proof.len()].copy_from_slice(&proof);
        // Noise bytes cannot make a checksum-valid record: the first proof is the planted one.
        prop_assert_eq!(
            later_durable_record(&bytes, from, SALT, LAST_GOOD),
            Some((at, LAST_GOOD + 2))
        );
        // And nothing is found after it.
        prop_assert_eq!(later_durable_record(&bytes, at + 1, SALT, LAST_GOOD), None);
    }
}

#[test]
fn a_commit_marker_ending_a_long_run_of_zeros_is_found() {
    let marker = proof(true);
    let mut bytes = vec![0u8; (8 << 20) + 13];
    let at = bytes.len() - marker.len();
    bytes[at..].copy_from_slice(&marker);
    assert_eq!(
        later_durable_record(&bytes, 1, SALT, LAST_GOOD),
        Some((at, LAST_GOOD + 2))
    );
}
