//! Review 140: `seglog tail` took any later file under a segment name for proof that the
//! segment before it was sealed, and skipped a last file whose header does not decode as
//! "being created" forever. Another log's file of zeros named after a live log (design.md,
//! "The directory moved under an open log"; reviews 134 and 136 for the library's readers)
//! made it print a record no later record vouched for, which a power cut may take; a last
//! segment whose header a disk damaged had its events left out, exit status 0. Fixed: only a
//! later file with a valid header proves a segment sealed; a last file with no valid header
//! and data after the header's place (read twice, as a roll may finish between the reads)
//! is reported as damage, exit status 2.

use super::*;
use seglog::{Log, Options};

fn tail_seqs(dir: &str) -> (Output, Vec<u64>) {
    super::tail::tail_output(&[dir, "e", "--from-seq", "0", "--timeout", "1s"])
}

#[test]
fn a_file_of_zeros_named_after_a_live_log_proves_nothing_to_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let log = Log::open_blocking(tmp.path(), Options::default()).unwrap();
    // Appended one after another: the last record has nothing after it that says it was
    // synced.
    for i in 1..=3 {
        log.append_encoded_blocking("e", "t", None, 0, &[format!("event {i}").as_bytes()])
            .unwrap();
    }
    let (o, seqs) = tail_seqs(dir);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(seqs, vec![1, 2], "event 3 is not proven durable");

    // Another log's prepared file (zeros, no header) arrives under a name after this log's.
    std::fs::write(
        tmp.path()
            .join(seglog_segment::format::segment_file_name(1 << 40)),
        vec![0u8; 64 << 10],
    )
    .unwrap();
    let (o, seqs) = tail_seqs(dir);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(
        seqs,
        vec![1, 2],
        "a file with no header after the log made tail show a record never proven durable"
    );
    log.close().unwrap();
}

#[test]
fn a_last_segment_whose_header_was_damaged_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let log = Log::open_blocking(tmp.path(), Options::default()).unwrap();
    for i in 1..=3 {
        log.append_encoded_blocking("e", "t", None, 0, &[format!("event {i}").as_bytes()])
            .unwrap();
    }
    log.close().unwrap();
    let (o, seqs) = tail_seqs(dir);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(seqs, vec![1, 2, 3]);

    let (_, last) = segment_files(tmp.path()).pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    bytes[0] ^= 0xff; // the magic
    std::fs::write(&last, bytes).unwrap();
    let (o, seqs) = tail_seqs(dir);
    assert_eq!(
        o.status.code(),
        Some(2),
        "tail left out the events of a segment whose header was damaged without saying so \
         (printed {seqs:?}); stderr: {}",
        err(&o)
    );
    assert!(err(&o).contains("header"), "{}", err(&o));
}
