//! Review 10 (of the locality change): `seglog tail --all` ("every execution, in global order
//! (LSN)") walks each segment file in file order and skips every record whose LSN is not
//! above the last one shown. In a clustered segment (format.md §3.5) file order is not LSN
//! order, so every group after the first loses the records whose LSNs are below the
//! previous group's last one: acknowledged events are silently never shown.

use super::*;
use seglog::compaction::policy;
use seglog::{CompactOptions, Log, Options};

#[test]
fn tail_all_shows_every_event_of_a_log_with_clustered_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let opts = Options::default().segment_size_bytes(4096);
    let log = Log::open_blocking(tmp.path(), opts.clone()).unwrap();
    for i in 0..150u32 {
        let exec = format!("e{}", i % 3);
        let payload = format!("event {i} {}", "p".repeat((i % 80) as usize));
        log.append_blocking(&exec, "t", payload.as_bytes()).unwrap();
    }
    let view = log.compaction_view(false).unwrap();
    log.compact_blocking(
        &policy::cluster_sealed_segments(&view),
        CompactOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert!(log.segments().iter().filter(|s| s.clustered).count() >= 2);
    // What the library says the global order is (and what tail must print).
    let want: Vec<(u64, String, u64)> = log
        .read_global(0, usize::MAX)
        .unwrap()
        .iter()
        .flat_map(|r| {
            (0..r.payloads.len() as u64).map(move |i| (r.lsn, r.execution.clone(), r.first_seq + i))
        })
        .collect();
    assert_eq!(want.len(), 150);
    log.close().unwrap();
    let o = seglog(&[
        "tail",
        dir,
        "--all",
        "--from-lsn",
        "1",
        "--json",
        "--poll",
        "10ms",
        "--timeout",
        "2s",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let got = super::tail::all_lines(&text(&o));
    let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).collect();
    assert!(
        missing.is_empty(),
        "seglog tail --all showed {} of {} events; missing {} acknowledged events, e.g. {:?}",
        got.len(),
        want.len(),
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(got, want);
}
