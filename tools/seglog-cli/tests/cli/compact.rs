//! `seglog compact`: dry runs, erasure, and refusing a log in use.

use super::*;
use seglog::{Log, Options};

fn files_containing(dir: &Path, needle: &[u8]) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let bytes = std::fs::read(e.as_ref().unwrap().path()).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
        .count()
}

/// Cuts the last record of the last segment short (and the commit marker a clean close put
/// after it): a torn tail, as a crash leaves it.
pub(super) fn tear_tail(last_segment: &Path) {
    let bytes = std::fs::read(last_segment).unwrap();
    let analysis = seglog_segment::inspect::analyze_segment(&bytes, 0);
    let last = *analysis.record_offsets.last().unwrap();
    let end = last as usize + analysis.record(&bytes, last).unwrap().len();
    std::fs::write(last_segment, &bytes[..end - 7]).unwrap();
}

#[test]
fn compact_dry_run_changes_no_byte_of_the_directory() {
    // A log of 4 KiB segments (the CLI's default segment size is 128 MiB), several of them.
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    assert!(segs.len() >= 3, "{segs:?}");
    let d = tmp.path().to_str().unwrap();
    let dry_run = |args: &[&str]| {
        let before = snapshot(tmp.path());
        let o = seglog(&[&["compact", d][..], args, &["--dry-run"]].concat());
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", err(&o));
        assert_same_files(&before, &snapshot(tmp.path()));
        text(&o)
    };
    // tenant-1 is exec-1: 40 events.
    let out = dry_run(&["--drop-tenant", "tenant-1"]);
    assert!(
        out.contains("would reclaim: 1 executions, 40 events"),
        "{out}"
    );
    dry_run(&[
        "--merge-small",
        "--older-than",
        "1s",
        "--finished-before",
        "1s",
    ]);

    // With a torn tail (which opening the log would cut), and without a LOCK file (which
    // opening would create).
    tear_tail(segs.last().unwrap());
    std::fs::remove_file(tmp.path().join("LOCK")).unwrap();
    let out = dry_run(&["--drop-tenant", "tenant-0", "--merge-small"]);
    assert!(
        out.contains("would reclaim: 2 executions, 80 events"),
        "the torn record is not counted: {out}"
    );
    let o = seglog(&["verify", d]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "the torn tail is still there: {}",
        text(&o)
    );
}

#[test]
fn compact_dry_run_reads_a_log_in_use_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    make_log(tmp.path());
    let holder = Log::open_blocking(tmp.path(), Options::default()).unwrap();
    // The holder zeroes ahead of its tail (moving the tail bound) in the background.
    let before = settled_snapshot(tmp.path());
    let d = tmp.path().to_str().unwrap();
    let o = seglog(&["compact", d, "--drop-execution", "exec-2", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        text(&o).contains("would reclaim: 1 executions, 40 events"),
        "{}",
        text(&o)
    );
    assert_same_files(&before, &snapshot(tmp.path()));
    holder.close().unwrap();
}

/// A log of Enact agent runs (some finished), in 4 KiB segments, with a torn tail.
fn agent_runs_log(dir: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use enact_core::kernel::persistence::{EventStore, StorageBackend};
        use enact_core::kernel::{ExecutionId, TenantId};
        let opts = Options::default()
            .segment_size_bytes(4096)
            .checkpoints(seglog::CheckpointMode::Inline);
        let store = seglog_eventstore::SeglogEventStore::open_with(dir, opts)
            .await
            .unwrap();
        for run in 0..12u64 {
            let exec = ExecutionId::from_string(format!("run-{run}"));
            let tenant = TenantId::from_string(format!("tenant-{}", run % 3));
            let events = seglog_eventstore::sample::agent_run(run);
            // Every third run is still going: its last events are not written yet.
            let keep = if run % 3 == 2 {
                events.len() / 2
            } else {
                events.len()
            };
            for event in events.into_iter().take(keep) {
                store.append(&exec, &tenant, event).await.unwrap();
            }
        }
        let last = store.log().segments().last().unwrap().path.clone();
        store.shutdown().await.unwrap();
        tear_tail(&last);
    });
}

fn size(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// The plan the library makes from a view.
pub(super) type PlanOf = fn(&seglog::compaction::IndexView) -> seglog::compaction::Plan;

#[test]
fn compact_dry_run_estimates_what_the_library_would_reclaim() {
    use seglog::compaction::policy;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    agent_runs_log(&dir);
    let cases: [(&[&str], PlanOf); 4] =
        [
            (&["--drop-tenant", "tenant-1"], |v| {
                policy::drop_tenant(v, "tenant-1")
            }),
            (
                &[
                    "--drop-execution",
                    "run-4",
                    "--drop-execution",
                    "run-11",
                    "--merge-small",
                ],
                |v| {
                    policy::drop_executions(v, ["run-4", "run-11"])
                        .and(policy::merge_small_segments(v, 16384 / 4, 16384))
                },
            ),
            (&["--finished-before", "0s"], |v| {
                seglog_eventstore::retention::finished_before(v, std::time::Duration::ZERO)
            }),
            (&["--older-than", "1h"], |v| {
                policy::drop_older_than(v, std::time::Duration::from_secs(3600))
            }),
        ];
    for (args, plan) in cases {
        let d = dir.to_str().unwrap();
        let o = seglog(
            &[
                &["compact", d, "--segment-size", "16384"][..],
                args,
                &["--dry-run"],
            ]
            .concat(),
        );
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", err(&o));
        let (expected, dropped) = library_dry_run(&dir, &tmp.path().join("copy"), plan);
        assert_eq!(text(&o).trim_end(), expected, "{args:?}");
        assert!(
            dropped > 0 || args.contains(&"--older-than"),
            "{args:?}: a case that drops nothing"
        );
    }
}

/// The library's own dry run of `plan` on a copy of `dir` (opening the log writes to it), as
/// `seglog compact --dry-run --segment-size 16384` prints it, and the executions it drops.
pub(super) fn library_dry_run(dir: &Path, copy: &Path, plan: PlanOf) -> (String, u64) {
    let _ = std::fs::remove_dir_all(copy);
    std::fs::create_dir(copy).unwrap();
    for (name, bytes) in snapshot(dir) {
        std::fs::write(copy.join(name), bytes).unwrap();
    }
    let log = Log::open_blocking(copy, Options::default().segment_size_bytes(4096)).unwrap();
    let view = log.compaction_view(true).unwrap();
    let plan = plan(&view);
    let r = log
        .compact_blocking(
            &plan,
            seglog::CompactOptions::default()
                .dry_run(true)
                .target_segment_bytes(16384),
            &mut |_, _| {},
        )
        .unwrap();
    log.close().unwrap();
    let printed = format!(
        "would reclaim: {} executions, {} events, {} (segments: {} read, {} written)",
        r.executions_dropped,
        r.events_dropped,
        size(r.bytes_reclaimed),
        r.rewrite.input_segments,
        r.rewrite.output_segments,
    );
    (printed, r.executions_dropped)
}

/// Files the next open removes without loss (format.md §4, step 1): a file of zeros inside
/// the log where no LSN is missing, and a last segment whose creation a crash cut. The dry
/// run leaves them out as the open does, instead of calling the log corrupt, and counts what
/// the library counts; the segment before a removed cut creation is the active one.
#[test]
fn compact_dry_run_leaves_out_the_files_the_open_removes() {
    use seglog::compaction::policy;
    use seglog_segment::format::{parse_segment_file_name, segment_file_name};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let segs = make_log(&dir);
    assert!(segs.len() >= 4, "{segs:?}");
    let lsn_of = |p: &Path| {
        parse_segment_file_name(p.file_name().unwrap().to_str().unwrap())
            .unwrap()
            .unwrap()
    };
    // Named right before the next segment: the segment before it ends below that LSN.
    let inside = dir.join(segment_file_name(lsn_of(&segs[2]) - 1));
    std::fs::write(&inside, vec![0u8; 8192]).unwrap();
    let d = dir.to_str().unwrap();
    let verify = seglog(&["verify", d]);
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify));

    let plans: [(&[&str], PlanOf); 2] = [
        (&["--drop-tenant", "tenant-1"], |v| {
            policy::drop_tenant(v, "tenant-1")
        }),
        (&["--merge-small"], |v| {
            policy::merge_small_segments(v, 16384 / 4, 16384)
        }),
    ];
    let check = |case: &str| {
        for (args, plan) in plans {
            let o = seglog(
                &[
                    &["compact", d, "--segment-size", "16384"][..],
                    args,
                    &["--dry-run"],
                ]
                .concat(),
            );
            assert_eq!(o.status.code(), Some(0), "{case}, {args:?}: {}", err(&o));
            let (expected, _) = library_dry_run(&dir, &tmp.path().join("copy"), plan);
            assert_eq!(text(&o).trim_end(), expected, "{case}, {args:?}");
        }
    };
    check("a file of zeros inside the log");

    // And a roll whose creation a crash cut: a last file with nothing but zeros.
    let last_lsn = analyze_last_lsn(segs.last().unwrap());
    std::fs::write(dir.join(segment_file_name(last_lsn + 1)), vec![0u8; 4096]).unwrap();
    check("and a cut creation at the end");
    assert!(inside.exists(), "the dry run removed nothing");
}

/// The greatest LSN in a segment file, commit markers included.
fn analyze_last_lsn(segment: &Path) -> u64 {
    let bytes = std::fs::read(segment).unwrap();
    seglog_segment::inspect::analyze_segment(&bytes, 0).last_lsn_with_markers
}

#[test]
fn compact_erases_a_tenant_from_the_files() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let d = dir.path().to_str().unwrap();
    assert!(files_containing(dir.path(), b"exec-1") > 0);
    let o = seglog(&[
        "compact",
        d,
        "--drop-tenant",
        "tenant-1",
        "--merge-small",
        "--segment-size",
        "65536",
        "--yes",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        text(&o).contains("reclaimed: 1 executions, 40 events"),
        "{}",
        text(&o)
    );
    assert_eq!(files_containing(dir.path(), b"exec-1"), 0);
    let o = seglog(&["verify", d]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o), err(&o));
    let o = seglog(&["events", d, "exec-0"]);
    assert_eq!(text(&o).matches("execution_paused").count(), 40);
    let o = seglog(&["events", d, "exec-1"]);
    assert_eq!(
        text(&o).matches("execution_paused").count(),
        0,
        "{}",
        text(&o)
    );
}

#[test]
fn compact_refuses_a_log_another_process_holds() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let d = dir.path().to_str().unwrap();
    let holder = Log::open_blocking(dir.path(), Options::default()).unwrap();
    let o = seglog(&["compact", d, "--older-than", "1s"]);
    assert_clean_failure(&o, 3);
    assert!(err(&o).contains("open in another process"), "{}", err(&o));
    holder.close().unwrap();
}

#[test]
fn compact_without_a_policy_or_with_a_bad_age_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let d = dir.path().to_str().unwrap();
    assert_eq!(seglog(&["compact", d]).status.code(), Some(64));
    assert_eq!(
        seglog(&["compact", d, "--older-than", "soon"])
            .status
            .code(),
        Some(64)
    );
}

#[test]
fn compact_never_preallocates_the_active_segment_to_its_segment_size() {
    // Compaction appends nothing, so it has no reason to reserve its --segment-size (128 MiB
    // by default) for a log written with 4 KiB segments: neither the active segment it finds
    // nor the one it rolls to (exec-1 has records in the active segment).
    let tmp = tempfile::tempdir().unwrap();
    make_log(tmp.path());
    let d = tmp.path().to_str().unwrap();
    let o = seglog(&["compact", d, "--drop-execution", "exec-1", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let files = snapshot(tmp.path());
    let (name, active) = files
        .iter()
        .rfind(|(n, _)| n.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    assert!(
        active.len() <= 4096,
        "{} is {} bytes",
        name.display(),
        active.len()
    );
}

#[test]
fn compact_erases_nothing_without_yes_when_nobody_can_confirm() {
    // Standard input is not a terminal here: nobody can answer the question, so an erasure
    // without --yes is refused and no byte changes. Merging alone erases nothing: no question.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let d = dir.path().to_str().unwrap();
    let before = snapshot(dir.path());
    let o = seglog(&["compact", d, "--drop-tenant", "tenant-1"]);
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(err(&o).contains("--yes"), "{}", err(&o));
    assert!(
        before == snapshot(dir.path()),
        "a refused erasure changed the log"
    );
    let o = seglog(&["compact", d, "--merge-small"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
}

#[test]
fn compact_takes_the_segment_size_from_the_log() {
    // make_log writes 4 KiB segments: merging with the log's own size keeps segments that
    // small, where the 128 MiB default would make one big segment of everything.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let d = dir.path().to_str().unwrap();
    let o = seglog(&[
        "compact",
        d,
        "--merge-small",
        "--drop-execution",
        "exec-1",
        "--yes",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    for (name, bytes) in snapshot(dir.path()) {
        if name.extension().is_some_and(|x| x == "seg") {
            assert!(
                bytes.len() <= 4096,
                "{} is {} bytes",
                name.display(),
                bytes.len()
            );
        }
    }
}
