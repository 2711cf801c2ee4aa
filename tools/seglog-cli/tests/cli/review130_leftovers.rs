//! Review 130: `seglog verify` and `seglog dump` report a file with no record as a leftover
//! "the next open removes" (exit status 1), where the open refuses it: a file of zeros
//! named after the commit marker that ends a sealed segment whose checkpoint the open loads
//! (the checkpoint lists records, not markers, so the open sees an LSN missing).
//! Fixed: the open reads that segment for its greatest LSN; and `seglog repair` removes such
//! a file as the open does instead of refusing it.

use super::*;
use seglog::Log;
use seglog_segment::format::{parse_segment_file_name, segment_file_name};
use seglog_segment::inspect::analyze_segment;

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(CheckpointMode::Inline)
}

#[test]
fn status_1_for_a_file_of_zeros_the_open_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let log = Log::open_blocking(dir, opts()).unwrap();
    for i in 0..20u64 {
        log.append_blocking(&format!("e{}", i % 3), "t", format!("p{i}").as_bytes())
            .unwrap();
    }
    log.close().unwrap();
    let mut marker = None;
    for round in 0..200usize {
        let (_, last) = segment_files(dir).pop().unwrap();
        let m = analyze_segment(&std::fs::read(&last).unwrap(), 0).last_lsn_with_markers;
        let log = Log::open_blocking(dir, opts()).unwrap();
        log.append_blocking("e0", "t", &vec![b'x'; 900 + (round % 7) * 50])
            .unwrap();
        log.close().unwrap();
        if segment_files(dir).iter().any(|(lsn, _)| *lsn == m + 1) {
            marker = Some(m);
            break;
        }
    }
    let marker = marker.expect("no reopen rolled right after a close's commit marker");
    let stray = dir.join(segment_file_name(marker));
    std::fs::write(&stray, vec![0u8; 64 << 10]).unwrap();

    let d = dir.to_str().unwrap();
    let codes: Vec<(String, Option<i32>)> = [vec!["verify", d], vec!["dump", d], vec!["stats", d]]
        .into_iter()
        .map(|args| (args[0].to_string(), seglog(&args).status.code()))
        .collect();
    let verify_out = text(&seglog(&["verify", d]));
    let open = Log::open_blocking(dir, Options::default());
    if codes.iter().any(|(_, c)| *c == Some(1)) {
        if let Err(e) = open {
            panic!(
                "exit statuses {codes:?} (1: \"the next open cuts or removes them\"), but the \
                 open refuses {}: {e}\n`seglog verify` said:\n{verify_out}",
                stray.display()
            );
        }
    }
}

/// A file of zeros inside the log where no record is missing: `seglog verify` calls it a
/// leftover the next open removes (exit status 1), and any open removes it (Salvage too);
/// `seglog repair` plans no such removal and refuses the log as damage salvage cannot cut.
#[test]
fn repair_refuses_a_leftover_that_every_open_removes() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    assert!(segs.len() >= 3, "{segs:?}");
    let lsn_of = |p: &Path| {
        parse_segment_file_name(p.file_name().unwrap().to_str().unwrap())
            .unwrap()
            .unwrap()
    };
    let zeros = tmp.path().join(segment_file_name(lsn_of(&segs[1]) - 1));
    std::fs::write(&zeros, vec![0u8; 8192]).unwrap();
    let d = tmp.path().to_str().unwrap();
    let verify = seglog(&["verify", d]);
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify));
    let dry = seglog(&["repair", d, "--dry-run"]);
    let repair = seglog(&["repair", d, "--yes"]);
    let still_there = zeros.exists();
    let reopened = Log::open_blocking(tmp.path(), Options::default())
        .map(|l| l.stats().recovery.removed_empty_files);
    assert!(
        repair.status.code() == Some(0),
        "`seglog verify` exit 1 (a leftover the next open removes); `seglog repair --dry-run` \
         exit {:?}: {}{}; `seglog repair --yes` exit {:?}: {}{}; file still there: \
         {still_there}; the open then: {reopened:?}",
        dry.status.code(),
        text(&dry),
        err(&dry),
        repair.status.code(),
        text(&repair),
        err(&repair),
    );
}
