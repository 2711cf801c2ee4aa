//! Review 142 (on review 140's change to `seglog tail`): `tail` is to count a segment sealed
//! only when a later file has a valid header *naming its first LSN*, and to report a last
//! file whose header does not (with data after the header's place) as damage whose "events
//! are not shown". Both hold only on the first look at the file:
//!
//! - `probe_header` is skipped for any file whose cursor already has a salt, and
//!   `read_new_bytes` sets the salt from any header that decodes, never comparing its first
//!   LSN with the file's name. So a file named after a live log whose header names another
//!   first LSN (a stray copy of a segment; the roll-into-a-moved-directory race leaves one
//!   log's header under another log's segment name) is "not yet" on the first poll and a
//!   proof of sealing from the second poll on: the live log's last record, which no later
//!   record vouched for (a power cut may take it), is printed.
//! - With records after such a header (another log's segment under a name after this log),
//!   tail says the file's events are not shown, then prints them anyway as this log's events
//!   (another log's, another tenant's data), and their `durable_through_lsn` vouches for this
//!   log's unsynced record.
//!
//! Expected: neither file proves anything about this log; only events 1 and 2 are printed.

use super::*;
use seglog::{Log, Options};

fn tail_seqs(dir: &str) -> (Output, Vec<u64>) {
    super::tail::tail_output(&[dir, "e", "--from-seq", "0", "--timeout", "1s"])
}

/// A live log whose third (last) record no later record vouches for.
fn live_log(tmp: &tempfile::TempDir) -> Log {
    let log = Log::open_blocking(tmp.path(), Options::default()).unwrap();
    for i in 1..=3 {
        log.append_encoded_blocking("e", "t", None, 0, &[format!("event {i}").as_bytes()])
            .unwrap();
    }
    let (o, seqs) = tail_seqs(tmp.path().to_str().unwrap());
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(seqs, vec![1, 2], "event 3 is not proven durable");
    log
}

#[test]
fn a_header_naming_another_first_lsn_becomes_a_proof_on_the_second_poll() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let log = live_log(&tmp);
    // A valid header that names first LSN 1 (this log's own segment's), nothing after it,
    // under a name after the log.
    let (_, first) = segment_files(tmp.path()).remove(0);
    let header =
        std::fs::read(&first).unwrap()[..seglog_segment::format::SEGMENT_HEADER_LEN].to_vec();
    let mut stray = header;
    stray.resize(64 << 10, 0);
    std::fs::write(
        tmp.path()
            .join(seglog_segment::format::segment_file_name(1 << 40)),
        stray,
    )
    .unwrap();
    let (o, seqs) = tail_seqs(dir);
    assert_eq!(
        seqs,
        vec![1, 2],
        "a file whose header names another first LSN made tail show a record never proven \
         durable; stderr: {}",
        err(&o)
    );
    log.close().unwrap();
}

#[test]
fn another_logs_segment_named_after_the_log_is_not_shown_and_vouches_for_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let log = live_log(&tmp);
    // Another log (another tenant), closed: its records are all durable, its marker vouches
    // for LSNs this log has not synced.
    let other = tempfile::tempdir().unwrap();
    let olog = Log::open_blocking(other.path(), Options::default()).unwrap();
    for i in 1..=6 {
        olog.append_encoded_blocking(
            "e",
            "other-tenant",
            None,
            0,
            &[format!("other log's secret {i}").as_bytes()],
        )
        .unwrap();
    }
    olog.close().unwrap();
    let (_, theirs) = segment_files(other.path()).remove(0);
    std::fs::copy(
        &theirs,
        tmp.path()
            .join(seglog_segment::format::segment_file_name(1 << 40)),
    )
    .unwrap();
    let (o, seqs) = tail_seqs(dir);
    assert!(
        err(&o).contains("header"),
        "the file is reported as damage: {}",
        err(&o)
    );
    assert!(
        !text(&o).contains("secret"),
        "tail said the file's events are not shown, and printed another log's events as this \
         log's: {}",
        text(&o)
    );
    assert_eq!(
        seqs,
        vec![1, 2],
        "another log's records vouched for this log's unsynced record; stderr: {}",
        err(&o)
    );
    log.close().unwrap();
}
