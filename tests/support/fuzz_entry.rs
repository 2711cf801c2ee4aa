//! The functions the fuzz targets in `tests/fuzz` drive, shared with the corpus replay that
//! runs in the normal test suite. Each takes arbitrary bytes and must neither panic nor
//! allocate more than the input's size.

use seglog_index::checkpoint;
use seglog_segment::format::{decode_record, RecordScan};
use seglog_segment::inspect::analyze_segment;
use seglog_segment::SegmentInfo;

/// The record decoder, as recovery and readers use it.
pub fn record_decoder(data: &[u8]) {
    let salt = data.first().map_or(1, |&b| u64::from(b));
    if let RecordScan::Record(r) = decode_record(data, salt, 0, data.len() as u64) {
        // A record that decodes must be self-consistent.
        let total: usize = r.events().map(<[u8]>::len).sum();
        assert_eq!(total, r.payload_len());
        assert!(r.len() <= data.len());
    }
}

/// The checkpoint decoder, against a segment whose identity comes from the input's tail.
pub fn checkpoint_decoder(data: &[u8]) {
    let info = SegmentInfo {
        number: 1,
        first_lsn: 1,
        last_lsn: 0,
        path: Default::default(),
        data_end: data.len() as u64 * 4,
        sealed: true,
        created_unix_nanos: 0,
        // The salt of a version-1 or -2 segment: its number, as the corpus was made with.
        record_salt: 1,
        clustered: false,
    };
    if let Ok(cp) = checkpoint::decode(data, &info) {
        for r in &cp.records {
            assert!((r.execution as usize) < cp.strings.len());
            assert!(u64::from(r.offset) < info.data_end);
        }
    }
}

/// A whole segment file, as the CLI reads one.
pub fn segment_file(data: &[u8]) {
    let a = analyze_segment(data, 0);
    for &off in &a.record_offsets {
        assert!(
            a.record(data, off).is_some(),
            "listed record does not decode"
        );
    }
    assert!(a.data_end as usize <= data.len());
}
