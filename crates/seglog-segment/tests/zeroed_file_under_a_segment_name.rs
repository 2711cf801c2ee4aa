//! A file under a segment's name with no header and nothing but zeros, inside the log.
//!
//! A roll that races a move of its directory can rename another log's prepared file (zeros,
//! no header) into that log's directory under a segment name (design.md, "The directory
//! moved under an open log"). The other log loses nothing, but its next open refused the
//! file ("bad magic") until it was removed by hand.
//!
//! Such a file holds no record. Recovery removes it where it cannot be a segment of the log
//! whose contents were lost: where the segments around it leave no LSN missing. Anywhere
//! else (records missing around it, a byte that is not zero, `AbsoluteConsistency`) the open
//! refuses, and says what the file is.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{append_one, contents, small_opts, Backend};
use seglog_segment::format::{parse_segment_file_name, segment_file_name};
use seglog_segment::io::{FileSystem, SegmentFile};
use seglog_segment::{RecoveryMode, SegmentLog, SegmentOptions};
use std::path::{Path, PathBuf};

/// (LSN, first payload) of each record.
type Records = Vec<(u64, Vec<u8>)>;

/// A closed log of several segments; its records and (first LSN, path) of its segments.
fn closed_log<B: Backend>(b: &B) -> (Records, Vec<(u64, PathBuf)>) {
    let (log, _) = SegmentLog::open(b.fs(), b.dir(), small_opts(), &mut ()).unwrap();
    for i in 1..=80 {
        append_one(&log, i).unwrap();
    }
    let records = contents(&log);
    log.close().unwrap();
    (records, segments(&b.fs(), &b.dir()))
}

/// (first LSN, path) of each segment file in `dir`, in log order.
fn segments<F: FileSystem>(fs: &F, dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = fs
        .list(dir)
        .unwrap()
        .into_iter()
        .filter_map(|name| {
            let lsn = parse_segment_file_name(&name)?.ok()?;
            Some((lsn, dir.join(name)))
        })
        .collect();
    found.sort();
    assert!(found.len() >= 4, "the log did not roll enough: {found:?}");
    found
}

/// Writes `bytes` durably to a new file `name` in `dir`.
fn place<F: FileSystem>(fs: &F, dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let file = fs.create_new(&path).unwrap();
    file.write_all_at(bytes, 0).unwrap();
    file.sync_data().unwrap();
    fs.sync_dir(dir).unwrap();
    path
}

/// A file between the second and third segments, named as a segment: what a racing roll
/// leaves (another log's prepared file: 64 KiB of written zeros).
fn stray_between_segments<B: Backend>(b: &B, segs: &[(u64, PathBuf)], bytes: &[u8]) -> PathBuf {
    let lsn = segs[2].0 - 1;
    assert!(lsn > segs[1].0, "the second segment holds one record");
    place(&b.fs(), &b.dir(), &segment_file_name(lsn), bytes)
}

fn exists<F: FileSystem>(fs: &F, path: &Path) -> bool {
    let name = path.file_name().unwrap().to_str().unwrap();
    fs.list(path.parent().unwrap())
        .unwrap()
        .iter()
        .any(|n| n == name)
}

fn a_zeroed_file_inside_the_log_is_removed_where_no_record_is_missing<B: Backend>() {
    let b = B::new();
    let (records, segs) = closed_log(&b);
    let stray = stray_between_segments(&b, &segs, &vec![0u8; 64 << 10]);

    let (log, report) = SegmentLog::open(b.fs(), b.dir(), small_opts(), &mut ())
        .unwrap_or_else(|e| panic!("the open refused a file that holds no record: {e}"));
    assert_eq!(report.removed_empty_files, vec![stray.clone()]);
    assert!(!exists(&b.fs(), &stray), "the file is still there");
    assert_eq!(contents(&log), records, "the log's records changed");
    // The log goes on, and opens again.
    let lsn = append_one(&log, 81).unwrap();
    log.close().unwrap();
    let (log, report) = SegmentLog::open(b.fs(), b.dir(), small_opts(), &mut ()).unwrap();
    assert!(report.removed_empty_files.is_empty(), "{report:?}");
    assert_eq!(contents(&log).last().map(|r| r.0), Some(lsn));
}
on_both_backends!(a_zeroed_file_inside_the_log_is_removed_where_no_record_is_missing);

/// The open fails, naming `path` and saying what is wrong with it, and `path` is kept.
fn assert_refused<B: Backend>(b: &B, opts: SegmentOptions, path: &Path, says: &str) {
    match SegmentLog::open(b.fs(), b.dir(), opts, &mut ()) {
        Ok(_) => panic!("the open took {} for nothing", path.display()),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(says), "{msg}");
        }
    }
    assert!(exists(&b.fs(), path), "{} was removed", path.display());
}

fn a_segment_whose_contents_were_lost_is_refused_not_removed<B: Backend>() {
    // A real segment that reads as zeros (a disk that lost it): its records are missing
    // between the segments around it, so it is not taken for a stray file.
    let b = B::new();
    let (_, segs) = closed_log(&b);
    let (_, lost) = &segs[2];
    let len = b.fs().open(lost).unwrap().len().unwrap();
    b.fs()
        .open(lost)
        .unwrap()
        .write_all_at(&vec![0u8; len as usize], 0)
        .unwrap();
    assert_refused(&b, small_opts(), lost, "records are missing");
}
on_both_backends!(a_segment_whose_contents_were_lost_is_refused_not_removed);

fn a_file_with_a_byte_set_is_refused<B: Backend>() {
    let b = B::new();
    let (_, segs) = closed_log(&b);
    let mut bytes = vec![0u8; 64 << 10];
    bytes[40_000] = 1;
    let stray = stray_between_segments(&b, &segs, &bytes);
    assert_refused(&b, small_opts(), &stray, "bad magic");
}
on_both_backends!(a_file_with_a_byte_set_is_refused);

fn absolute_consistency_refuses_a_zeroed_file_inside_the_log<B: Backend>() {
    let b = B::new();
    let (_, segs) = closed_log(&b);
    let stray = stray_between_segments(&b, &segs, &vec![0u8; 64 << 10]);
    let opts = SegmentOptions {
        recovery_mode: RecoveryMode::AbsoluteConsistency,
        ..small_opts()
    };
    assert_refused(&b, opts, &stray, "no segment header");
}
on_both_backends!(absolute_consistency_refuses_a_zeroed_file_inside_the_log);

/// Named after the last segment, the file is taken for a segment whose creation a crash
/// cut, and removed, as before. But the last segment is then the one before it, and that is
/// the one recovery must read from the disk where nothing proves it durable (format.md §4,
/// step 0): a commit whose writeback failed before a restart is still cached, clean, and
/// must be neither served nor vouched for.
#[test]
fn the_segment_before_a_zeroed_last_file_is_read_from_the_disk_after_a_restart() {
    use common::prepared::{append, lost};
    use common::tail_bound::{open_and_roll_into_a_prepared_segment, opts};
    use seglog_segment::io::sim::{CrashMode, SimFs};

    let fs = SimFs::new();
    let (log, mut acked) = open_and_roll_into_a_prepared_segment(&fs, opts());
    for i in 6..=25 {
        acked.insert(append(&log, i).unwrap(), i);
    }
    common::fail_next_sync(&fs);
    assert!(
        append(&log, 26).is_err(),
        "the failed commit was acknowledged"
    );
    drop(log);
    let stray = place(
        &fs,
        Path::new("/log"),
        &segment_file_name(1 << 40),
        &vec![0u8; 64 << 10],
    );

    // The process restarts on the same machine: same page cache.
    let (log, report) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    assert_eq!(report.removed_incomplete_segment, Some(stray));
    assert!(lost(&log, &acked).is_empty());
    for i in 27..=40 {
        acked.insert(append(&log, i).unwrap(), i);
    }
    drop(log);
    let fs = fs.crash(CrashMode::LoseUnsynced);
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ())
        .unwrap_or_else(|e| panic!("open after the power cut: {e}"));
    assert!(lost(&log, &acked).is_empty());
}

fn a_lost_segment_before_a_cut_creation_is_refused_not_removed<B: Backend>() {
    // Review 129: the roll after the last segment created its file and a crash cut that
    // creation (a segment name, no header); then the disk lost the sealed segment's
    // contents. The lost segment is not taken for a second cut creation: a crash cuts one
    // creation, and the lost segment's records are missing.
    let b = B::new();
    let (records, segs) = closed_log(&b);
    let cut = place(
        &b.fs(),
        &b.dir(),
        &segment_file_name(records.last().unwrap().0 + 1),
        &[],
    );
    let (_, lost) = segs.last().unwrap();
    let len = b.fs().open(lost).unwrap().len().unwrap();
    let file = b.fs().open(lost).unwrap();
    file.write_all_at(&vec![0u8; len as usize], 0).unwrap();
    file.sync_data().unwrap();
    assert_refused(&b, small_opts(), lost, "records are missing");
    // A refused open leaves the directory as it found it (review 131: with the cut creation
    // gone, the next open took the lost segment for one).
    assert!(
        exists(&b.fs(), &cut),
        "the refused open removed the cut creation"
    );
    assert_refused(&b, small_opts(), lost, "records are missing");
}
on_both_backends!(a_lost_segment_before_a_cut_creation_is_refused_not_removed);

/// The read-only open fails, naming `path` and saying what is wrong with it.
fn assert_read_only_refused<B: Backend>(b: &B, path: &Path, says: &str) {
    match SegmentLog::open_read_only(b.fs(), b.dir(), &mut ()) {
        Ok(_) => panic!("the read-only open took {} for nothing", path.display()),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(says), "{msg}");
        }
    }
}

fn a_read_only_open_reads_past_a_zeroed_file_where_no_record_is_missing<B: Backend>() {
    // Until a writer's open removes it, readers that do not own the log (read-only opens,
    // their reloads) judge the file as that open will, instead of refusing the whole log.
    let b = B::new();
    let (records, segs) = closed_log(&b);
    let stray = stray_between_segments(&b, &segs, &vec![0u8; 64 << 10]);
    let (reader, _) = SegmentLog::open_read_only(b.fs(), b.dir(), &mut ())
        .unwrap_or_else(|e| panic!("the read-only open refused a file with no record: {e}"));
    assert_eq!(contents(&reader), records, "the reader's records");
    assert!(exists(&b.fs(), &stray), "a read-only open removed a file");
    let view = reader.reload_read_only(&mut ()).unwrap();
    reader.install_view(view).unwrap();
    assert_eq!(contents(&reader), records, "the reloaded records");

    // Not a lost segment, though: its records are missing. (The first: a lost last segment
    // reads as a cut creation, to a writer's open as well.)
    let (_, lost) = &segs[0];
    let len = b.fs().open(lost).unwrap().len().unwrap();
    b.fs()
        .open(lost)
        .unwrap()
        .write_all_at(&vec![0u8; len as usize], 0)
        .unwrap();
    assert_read_only_refused(&b, lost, "records are missing");
}
on_both_backends!(a_read_only_open_reads_past_a_zeroed_file_where_no_record_is_missing);

fn a_read_only_open_refuses_a_zeroed_file_with_a_byte_set_or_before_a_cut_creation<B: Backend>() {
    let b = B::new();
    let (records, segs) = closed_log(&b);
    let mut bytes = vec![0u8; 64 << 10];
    bytes[40_000] = 1;
    let stray = stray_between_segments(&b, &segs, &bytes);
    assert_read_only_refused(&b, &stray, "bad magic");
    b.fs().remove(&stray).unwrap();

    // Zeros named right after the last segment, then a cut creation: once the writer's open
    // removed the cut creation, nothing would follow the zeros (as the open, refused).
    let last = records.last().unwrap().0;
    let zeros = place(
        &b.fs(),
        &b.dir(),
        &segment_file_name(last + 1),
        &[0u8; 4096],
    );
    place(&b.fs(), &b.dir(), &segment_file_name(last + 2), &[]);
    assert_read_only_refused(&b, &zeros, "");
}
on_both_backends!(a_read_only_open_refuses_a_zeroed_file_with_a_byte_set_or_before_a_cut_creation);

fn a_read_only_open_refuses_a_last_segment_whose_header_was_damaged<B: Backend>() {
    // Review 137: records after a header that does not decode: no creation in progress, but
    // a segment whose header a disk damaged. Refused, as the writer's open refuses it, not
    // left out with its acknowledged records.
    let b = B::new();
    let (_, segs) = closed_log(&b);
    let (_, last) = segs.last().unwrap();
    let file = b.fs().open(last).unwrap();
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, 20).unwrap();
    file.write_all_at(&[byte[0] ^ 0x10], 20).unwrap();
    file.sync_data().unwrap();
    assert_read_only_refused(&b, last, "");
    assert_refused(&b, small_opts(), last, "");
}
on_both_backends!(a_read_only_open_refuses_a_last_segment_whose_header_was_damaged);
