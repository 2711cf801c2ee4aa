#![allow(clippy::unwrap_used)]

use super::*;
use crate::manifest::ActiveSegment;
use crate::manifest::{ObjectRef, SegmentEntry, FORMAT_VERSION};
use std::path::PathBuf;

/// A local segment: number, LSNs, salt, sealed, and whether it is a compaction output (the
/// header flag the check reads).
struct Local {
    info: SegmentInfo,
    compacted: bool,
}

fn local(number: u64, first: u64, last: u64, salt: u64, sealed: bool, compacted: bool) -> Local {
    Local {
        info: SegmentInfo {
            number,
            first_lsn: first,
            last_lsn: last,
            path: PathBuf::from(format!("{first:020}.seg")),
            data_end: 1000 + number,
            sealed,
            created_unix_nanos: 0,
            record_salt: salt,
            clustered: false,
        },
        compacted,
    }
}

fn entry_of(l: &Local) -> SegmentEntry {
    let i = &l.info;
    SegmentEntry {
        number: i.number,
        first_lsn: i.first_lsn,
        last_lsn: i.last_lsn,
        record_salt: i.record_salt,
        segment: ObjectRef {
            key: format!("p/segments/{}", i.number),
            len: i.data_end,
            crc32: 0,
        },
        checkpoint: None,
    }
}

fn manifest(entries: Vec<SegmentEntry>) -> Manifest {
    Manifest {
        log_id: None,
        format_version: FORMAT_VERSION,
        manifest_id: 2,
        writer_epoch: 1,
        writer_nonce: "0".repeat(32),
        created_unix_millis: 0,
        segments: entries,
        active: None,
    }
}

fn run(m: &Manifest, locals: &[Local]) -> Result<Verdict> {
    let infos: Vec<SegmentInfo> = locals.iter().map(|l| l.info.clone()).collect();
    check(m, &infos, None, |info| {
        Ok(locals
            .iter()
            .find(|l| l.info.number == info.number)
            .map(|l| l.compacted))
    })
}

/// The shipped log: three sealed segments.
fn shipped() -> Vec<Local> {
    vec![
        local(1, 1, 40, 0xa1, true, false),
        local(2, 41, 80, 0xa2, true, false),
        local(3, 81, 120, 0xa3, true, false),
    ]
}

#[test]
fn the_log_that_shipped_continues_its_manifest() {
    let mut l = shipped();
    let m = manifest(l.iter().map(entry_of).collect());
    l.push(local(4, 121, 130, 0xa4, false, false));
    assert_eq!(run(&m, &l).unwrap(), Verdict::Continues);
}

#[test]
fn a_longer_log_with_other_segments_over_the_same_lsns_diverges() {
    let m = manifest(shipped().iter().map(entry_of).collect());
    let wrong = vec![
        local(1, 1, 60, 0xb1, true, false),
        local(2, 61, 400, 0xb2, true, false),
        local(3, 401, 401, 0xb3, false, false),
    ];
    assert!(matches!(run(&m, &wrong), Err(Error::Diverged(_))));
}

#[test]
fn compaction_outputs_and_whole_erasures_replace_shipped_segments() {
    let m = manifest(shipped().iter().map(entry_of).collect());
    // Segments 1 and 2 compacted into one output under 1's name; 3 erased whole.
    let compacted = vec![
        local(5, 1, 77, 0xc5, true, true),
        local(6, 121, 150, 0xc6, true, false),
        local(7, 151, 151, 0xc7, false, false),
    ];
    assert_eq!(run(&m, &compacted).unwrap(), Verdict::Continues);
    // The first segments erased whole (retention drops the oldest executions).
    let retained = vec![
        local(3, 81, 120, 0xa3, true, false),
        local(4, 121, 121, 0xa4, false, false),
    ];
    assert_eq!(run(&m, &retained).unwrap(), Verdict::Continues);
}

#[test]
fn an_original_segment_next_to_compaction_outputs_still_diverges() {
    let m = manifest(shipped().iter().map(entry_of).collect());
    let mixed = vec![
        local(5, 1, 70, 0xc5, true, true),
        local(6, 71, 200, 0xd6, true, false), // holds LSNs of shipped segments 2 and 3
        local(7, 201, 201, 0xd7, false, false),
    ];
    assert!(matches!(run(&m, &mixed), Err(Error::Diverged(_))));
}

#[test]
fn the_same_segment_at_another_length_or_still_active_diverges() {
    let m = manifest(shipped().iter().map(entry_of).collect());
    let mut shorter = shipped();
    shorter[1].info.data_end -= 1;
    shorter.push(local(4, 121, 121, 0xa4, false, false));
    assert!(matches!(run(&m, &shorter), Err(Error::Diverged(_))));
}

#[test]
fn a_log_that_falls_short_of_the_manifest_diverges() {
    let m = manifest(shipped().iter().map(entry_of).collect());
    let short = vec![
        local(1, 1, 40, 0xa1, true, false),
        local(2, 41, 41, 0xa2, false, false),
    ];
    assert!(matches!(run(&m, &short), Err(Error::Diverged(_))));
}

#[test]
fn a_segment_replaced_under_the_check_defers_the_round() {
    let m = manifest(shipped().iter().map(entry_of).collect());
    let l = [
        local(5, 1, 120, 0xc5, true, true),
        local(6, 121, 121, 0xc6, false, false),
    ];
    let infos: Vec<SegmentInfo> = l.iter().map(|l| l.info.clone()).collect();
    assert_eq!(
        check(&m, &infos, None, |_| Ok(None)).unwrap(),
        Verdict::Changed
    );
}

#[test]
fn a_clustered_output_holds_lsns_up_to_the_next_segment() {
    // A clustered segment's last_lsn (file order) may be below LSNs it holds.
    let m = manifest(shipped().iter().map(entry_of).collect());
    let mut clustered = local(5, 1, 30, 0xc5, true, false);
    clustered.info.clustered = true;
    let l = vec![clustered, local(6, 121, 121, 0xc6, false, false)];
    // Not flagged as a compaction output here, so holding shipped LSNs is divergence: the
    // check did look at it for segments 2 and 3.
    assert!(matches!(run(&m, &l), Err(Error::Diverged(_))));
}

#[test]
fn the_chunked_active_segment_must_be_local_or_left_behind_by_compaction() {
    let mut m = manifest(shipped().iter().map(entry_of).collect());
    m.format_version = FORMAT_VERSION;
    m.active = Some(ActiveSegment {
        number: 4,
        first_lsn: 121,
        record_salt: 0xa4,
        chunks_epoch: 1,
    });
    let mut same = shipped();
    same.push(local(4, 121, 180, 0xa4, false, false));
    assert_eq!(run(&m, &same).unwrap(), Verdict::Continues);
    // Sealed since, then compacted into an output at its name; or erased whole.
    let mut compacted = shipped();
    compacted.push(local(6, 121, 150, 0xc6, true, true));
    compacted.push(local(5, 190, 190, 0xa5, false, false));
    assert_eq!(run(&m, &compacted).unwrap(), Verdict::Continues);
    let mut erased = shipped();
    erased.push(local(5, 190, 190, 0xa5, false, false));
    assert_eq!(run(&m, &erased).unwrap(), Verdict::Continues);
    // Not there, and not moved past it: another log, or one that lost it.
    let mut missing = shipped();
    missing.push(local(9, 121, 121, 0xb9, false, false));
    assert!(matches!(run(&m, &missing), Err(Error::Diverged(_))));
    // Moved past it with an original segment over its first LSN: another log.
    let mut other = shipped();
    other.push(local(9, 121, 170, 0xb9, true, false));
    other.push(local(10, 171, 171, 0xba, false, false));
    assert!(matches!(run(&m, &other), Err(Error::Diverged(_))));
}
