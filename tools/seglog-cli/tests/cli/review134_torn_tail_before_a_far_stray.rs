//! Review 134: a log whose active segment has a torn tail, and whose directory holds a file
//! of zeros named far after the log (another log's prepared file: design.md, "The directory
//! moved under an open log"; review 132's state, on real files). The open removes the file
//! as a cut creation and, as its name is nowhere near where the active segment's records
//! could end (`successor_fits`), cuts the torn tail as a torn tail.
//!
//! The tools read the segment before the file as sealed: `seglog compact --dry-run` refused
//! the log as corrupt (exit status 2), `seglog verify` called it corruption, and `seglog
//! repair` called the torn record acknowledged data. Fixed: they ask the open's rule
//! (`seglog::tail_may_be_torn`).

use super::compact::{library_dry_run, tear_tail};
use super::*;
use seglog::compaction::policy;
use seglog::{Log, Options};
use seglog_segment::format::segment_file_name;

/// A closed log of 120 events in 4 KiB segments, its last record torn.
fn torn_log(dir: &Path) {
    let log = Log::open_blocking(dir, Options::default().segment_size_bytes(4096)).unwrap();
    for i in 0..120u64 {
        log.append_blocking(
            &format!("exec-{}", i % 3),
            &format!("tenant-{}", i % 3 % 2),
            format!("payload {i}").as_bytes(),
        )
        .unwrap();
    }
    log.close().unwrap();
    let segs = segment_files(dir);
    assert!(segs.len() >= 3, "{segs:?}");
    tear_tail(&segs.last().unwrap().1);
}

#[test]
fn the_tools_cut_a_torn_tail_before_a_far_stray_file_as_the_open_does() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    torn_log(&dir);
    std::fs::write(dir.join(segment_file_name(1 << 40)), vec![0u8; 8192]).unwrap();
    let d = dir.to_str().unwrap();

    let verify = seglog(&["verify", d]);
    assert_eq!(
        verify.status.code(),
        Some(1),
        "a torn tail and a leftover, as the open finds them: {}",
        text(&verify)
    );

    let (expected, _) = library_dry_run(&dir, &tmp.path().join("copy"), |v| {
        policy::drop_tenant(v, "tenant-1")
    });
    let dry = seglog(&[
        "compact",
        d,
        "--segment-size",
        "16384",
        "--drop-tenant",
        "tenant-1",
        "--dry-run",
    ]);
    assert_eq!(dry.status.code(), Some(0), "{}", err(&dry));
    assert_eq!(text(&dry).trim_end(), expected);

    let plan = seglog(&["repair", d, "--dry-run"]);
    let out = text(&plan);
    assert!(
        out.contains("a torn tail: never acknowledged") && !out.contains("acknowledged data"),
        "{out}"
    );
}
