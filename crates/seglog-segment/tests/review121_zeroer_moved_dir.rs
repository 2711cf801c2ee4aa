//! Review 121 (of b8c36b5, "rounds of large records go without zeros ahead"): the zeroing
//! thread opens the handle it zeroes through *by path* (`zero_range`: `self.fs.open(&entry.path)`,
//! no `check_dir`), the first time it claims a range of a segment. Before b8c36b5 that
//! happened within a round or two of the roll that created the segment (a round woke it:
//! `zeroed.segment != tail_segment`). Now, while rounds are large, the thread does nothing
//! in the new segment (`zeros_pay` is false) and opens it only when rounds get small again:
//! minutes or hours later. If the log's directory was moved meanwhile and another log (another
//! tenant's) now lives at the old path, with a segment of the same name (segment files are
//! named by their first LSN), the zeros go into *that* log's segment, at this log's tail:
//! they overwrite the other tenant's acknowledged records, which a clean close had made
//! durable. design.md ("The directory moved under an open log") promises that a moved log
//! never puts anything into the log now at its path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog_segment::format::EventBatch;
use seglog_segment::io::StdFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::time::{Duration, Instant};

fn batch<'a>(tenant: &'a [u8], payload: &'a [u8]) -> EventBatch<'a, Vec<u8>> {
    EventBatch {
        encoding: 0,
        execution_id: b"exec",
        tenant_id: tenant,
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: Box::leak(vec![payload.to_vec()].into_boxed_slice()),
    }
}

fn payload(tag: u8, i: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|k| 1 + ((tag as usize * 97 + i as usize * 13 + k) % 251) as u8)
        .collect()
}

/// One round of `n` large records (submitted together, then waited for): a round of
/// `n` × 100 KiB, written with one vectored write.
fn large_round(log: &SegmentLog<StdFs>, tenant: &[u8], next: &mut u64, n: u64) {
    let mut last = 0;
    for _ in 0..n {
        let p = payload(1, *next, 100 << 10);
        *next += 1;
        let record = log.encode(&batch(tenant, &p)).unwrap();
        last = log.submit(record).unwrap().lsn;
    }
    log.wait_durable(last).unwrap();
}

#[test]
fn zeros_resumed_after_large_rounds_never_land_in_another_log_now_at_the_moved_path() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("log");
    let opts_a = SegmentOptions {
        segment_size_bytes: 4 << 20,
        max_record_size_bytes: 256 << 10,
        zero_ahead_bytes: 1 << 20,
        prepare_next_segment: false,
        ..SegmentOptions::default()
    };
    let (a, _) = SegmentLog::open(StdFs, &path, opts_a.clone(), &mut ()).unwrap();

    // Tenant A: rounds of 1.2 MB (zeros ahead pause once the average passes 512 KiB), on
    // into a second segment, until it holds 2 MiB.
    let mut next = 0;
    while a.segments().len() < 2 || a.segments().last().unwrap().data_end < (2 << 20) {
        large_round(&a, b"tenant-a", &mut next, 12);
    }
    let a_seg = a.segments().last().unwrap().clone();
    let zeroed_before = a.stats().zeroed_bytes;

    // A's directory moves away; tenant B's log is created at the old path and happens to
    // have a segment of the same name (first LSN), with records where A's tail is.
    std::fs::rename(&path, root.path().join("log-moved")).unwrap();
    let opts_b = SegmentOptions {
        segment_size_bytes: 16 << 20,
        max_record_size_bytes: 256 << 10,
        ..SegmentOptions::default()
    };
    let (b, _) = SegmentLog::open(StdFs, &path, opts_b.clone(), &mut ()).unwrap();
    let mut b_records = Vec::new();
    for i in 0..a_seg.first_lsn - 2 {
        let p = payload(2, i, 100);
        let lsn = b.append(&batch(b"tenant-b", &p)).unwrap().lsn;
        b_records.push((lsn, p));
    }
    b.roll().unwrap();
    let b_seg = b.segments().last().unwrap().clone();
    assert_eq!(
        b_seg.path.file_name(),
        a_seg.path.file_name(),
        "B's segment has A's segment's name"
    );
    let mut i = 0;
    while b.segments().last().unwrap().data_end < a_seg.data_end + (3 << 20) {
        let p = payload(3, i, 100 << 10);
        i += 1;
        let lsn = b.append(&batch(b"tenant-b", &p)).unwrap().lsn;
        b_records.push((lsn, p));
    }
    b.close().unwrap();
    drop(b);

    // Tenant A's rounds get small: the average falls under 512 KiB and zeros resume.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut k = 0;
    while a.stats().zeroed_bytes == zeroed_before && Instant::now() < deadline {
        let p = payload(4, k, 200);
        k += 1;
        a.append(&batch(b"tenant-a", &p)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let zeroed = a.stats().zeroed_bytes - zeroed_before;
    a.close().unwrap();
    drop(a);

    // Tenant B's log, reopened: every record it acknowledged, as written.
    let reopened = SegmentLog::open(StdFs, &path, opts_b, &mut ());
    let (b, report) = match reopened {
        Ok(x) => x,
        Err(e) => panic!(
            "tenant B's log no longer opens after tenant A's zeroing thread resumed \
             ({zeroed} bytes zeroed): {e}"
        ),
    };
    let stored: std::collections::BTreeMap<u64, (Vec<u8>, Vec<u8>)> = b
        .records()
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            let v = r.view();
            let entry = (
                v.lsn(),
                (v.tenant_id().to_vec(), v.events().next().unwrap().to_vec()),
            );
            entry
        })
        .collect();
    let damaged: Vec<u64> = b_records
        .iter()
        .filter(|(lsn, p)| stored.get(lsn) != Some(&(b"tenant-b".to_vec(), p.clone())))
        .map(|(lsn, _)| *lsn)
        .collect();
    assert!(
        damaged.is_empty(),
        "tenant A's zeroing thread ({zeroed} bytes zeroed after its directory moved) wrote \
         into tenant B's segment {:?}: B's acknowledged LSNs {damaged:?} lost or damaged \
         (recovery report: {report:?})",
        b_seg.path
    );
}
