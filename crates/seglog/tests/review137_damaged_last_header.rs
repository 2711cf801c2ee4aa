//! Review 137: a read-only open ignores a header-less *last* file whatever it holds
//! (`snapshot::attempt_once`: "a last file without a header holds nothing acknowledged").
//! A last segment with acknowledged records whose header a disk damaged is such a file: the
//! writer's open refuses the log (`creation_was_cut`: not a cut creation), but readers serve
//! the log without that segment's records (and without the newest commit group of the one
//! before), with no error, and `backup` of the read-only log makes a copy that opens clean
//! without them. Fixed: a read-only open takes a header-less last file for nothing
//! acknowledged only when nothing is written after the header's place, and otherwise
//! refuses it as the writer's open does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{CheckpointMode, Log, Options};
use std::path::{Path, PathBuf};

fn small() -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(CheckpointMode::Off)
}

fn payload(seq: u64) -> Vec<u8> {
    format!("e/{seq}/{}", "y".repeat((seq % 30) as usize)).into_bytes()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(seglog_segment::format::parse_segment_file_name)
                .is_some_and(|r| r.is_ok())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_damaged_header_on_the_last_segment_is_not_read_past_silently() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), small()).unwrap();
    let mut acked = 0;
    for seq in 1..=200u64 {
        assert_eq!(log.append_blocking("e", "t", &payload(seq)).unwrap(), seq);
        acked = seq;
    }
    log.close().unwrap();
    drop(log);
    let files = segment_files(dir.path());
    assert!(files.len() >= 3, "{files:?}");
    let last = files.last().unwrap();
    // One byte of the header (inside its checksummed part) damaged: the file's records
    // are all still there.
    let mut bytes = std::fs::read(last).unwrap();
    bytes[20] ^= 0x40;
    std::fs::write(last, &bytes).unwrap();

    let writer_open = Log::open_blocking(dir.path(), small());
    let writer_refused = writer_open.is_err();
    drop(writer_open);
    assert!(
        writer_refused,
        "the writer's open takes the damaged header for a cut creation"
    );

    let reader = Log::open_read_only_blocking(dir.path());
    let served = reader.as_ref().map(|r| r.read("e").unwrap().len() as u64);
    let dest = tempfile::tempdir().unwrap();
    let dest = dest.path().join("copy");
    let backup = reader.as_ref().ok().map(|r| r.backup_blocking(&dest));
    let in_copy = match &backup {
        Some(Ok(_)) => {
            let copy = Log::open_blocking(&dest, small()).unwrap();
            Some(copy.read("e").unwrap().len() as u64)
        }
        _ => None,
    };
    assert!(
        served.is_err() || served.as_ref().is_ok_and(|&n| n == acked),
        "the writer's open refuses the log, yet a read-only open serves {served:?} of {acked} \
         acknowledged events with no error; a backup of it succeeded ({:?}) and the copy \
         opens clean with {in_copy:?} events",
        backup.map(|b| b.map(|r| r.last_lsn)),
    );
}
