//! Review 35: the torn-tail look-ahead on short inputs and at every `from`, and
//! `analyze_segment` on every prefix of a closed segment that ends at its commit marker.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::payload;
use seglog_segment::format::{encode_commit_marker, EventBatch, COMMIT_MARKER_LEN};
use seglog_segment::inspect::{analyze_segment, later_durable_record};
use seglog_segment::io::sim::SimFs;
use seglog_segment::{SegmentLog, SegmentOptions};

#[test]
fn look_ahead_never_panics_on_short_inputs_or_any_from() {
    let marker = encode_commit_marker(7, 12, 11);
    for len in 0..=3 * COMMIT_MARKER_LEN {
        let mut bytes = vec![0u8; len];
        if len >= COMMIT_MARKER_LEN {
            bytes[len - COMMIT_MARKER_LEN..].copy_from_slice(&marker);
        }
        for from in 0..=len + 3 {
            let got = later_durable_record(&bytes, from, 7, 10);
            if len >= COMMIT_MARKER_LEN && from <= len - COMMIT_MARKER_LEN {
                assert_eq!(
                    got,
                    Some((len - COMMIT_MARKER_LEN, 12)),
                    "len {len} from {from}"
                );
            } else {
                assert_eq!(got, None, "len {len} from {from}");
            }
        }
    }
    assert_eq!(later_durable_record(&[], usize::MAX, 7, u64::MAX), None);
    assert_eq!(later_durable_record(&marker, 0, 7, u64::MAX - 1), None);
}

#[test]
fn every_prefix_of_a_cut_segment_analyses_without_panic() {
    let fs = SimFs::new();
    let opts = SegmentOptions {
        segment_size_bytes: 4096,
        max_record_size_bytes: 2048,
        preallocate: true,
        ..SegmentOptions::default()
    };
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts, &mut ()).unwrap();
    for i in 1..=4u64 {
        let p = payload(i);
        log.append(&EventBatch {
            encoding: 0,
            execution_id: b"exec",
            tenant_id: b"tenant",
            first_seq: i,
            timestamp_unix_nanos: 0,
            payloads: &[&p[..]],
        })
        .unwrap();
    }
    let last = log.segments().last().unwrap().clone();
    log.close().unwrap();
    let bytes = fs.read_file(&last.path).unwrap();
    assert_eq!(bytes.len() as u64, last.data_end + COMMIT_MARKER_LEN as u64);
    for l in 0..=bytes.len() {
        let a = analyze_segment(&bytes[..l], 0);
        if l == bytes.len() {
            assert!(a.damage.is_none(), "{a:?}");
        } else if let Some(d) = &a.damage {
            // a prefix cut short is never proven acknowledged by a later record
            assert!(
                d.later_durable_record.is_none() || l > last.data_end as usize,
                "l={l}: {d:?}"
            );
        }
    }
}
