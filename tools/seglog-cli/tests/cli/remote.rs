//! `seglog remote status` and `seglog restore` on a log shipped to a file:// bucket.

use super::{assert_clean_failure, seglog, text};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use std::sync::Arc;

/// Ships a log with a few sealed segments into `<root>/bucket/p`; returns its URL and the
/// number of events shipped.
// Options are set field by field: they are about to become #[non_exhaustive].
#[allow(clippy::field_reassign_with_default)]
pub(crate) fn shipped(root: &std::path::Path) -> (String, usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let bucket = root.join("bucket");
        std::fs::create_dir_all(&bucket).unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let prefix = ObjectPath::from_absolute_path(bucket.join("p")).unwrap();
        let mut options = seglog::Options::default();
        options.segment_size_bytes = 8 * 1024;
        // Every sealed segment has its checkpoint when it ships.
        options.checkpoints = seglog::CheckpointMode::Inline;
        let log = seglog::Log::open(root.join("a"), options).await.unwrap();
        let tier = seglog_tier::Tier::claim(store, prefix).await.unwrap();
        for i in 0..100u32 {
            log.append(
                &format!("exec-{}", i % 3),
                "t",
                format!("event {i} {}", "x".repeat(100)).as_bytes(),
            )
            .await
            .unwrap();
        }
        log.roll().await.unwrap();
        tier.ship(&log).await.unwrap();
        log.close().unwrap();
        (format!("file://{}", bucket.join("p").display()), 100)
    })
}

#[test]
fn remote_status_reports_the_newest_manifest_and_a_missing_object() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, _) = shipped(tmp.path());
    let o = seglog(&["remote", "status", &url]);
    assert_eq!(o.status.code(), Some(0), "{}", super::err(&o));
    let out = text(&o);
    assert!(out.contains("manifest 2: owner epoch 1"), "{out}");
    assert!(out.contains("objects it names are present"), "{out}");
    // Lose a segment object: status says which, exit 2.
    let segments = tmp.path().join("bucket/p/segments");
    let victim = std::fs::read_dir(&segments)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(&victim).unwrap();
    let o = seglog(&["remote", "status", &url]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("missing"), "{}", text(&o));
}

#[test]
fn restore_claims_and_restores_a_log_that_verifies_and_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, events) = shipped(tmp.path());
    let dest = tmp.path().join("b");
    let o = seglog(&["restore", &url, dest.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", super::err(&o));
    assert!(text(&o).contains("claimed with epoch 2"), "{}", text(&o));
    let o = seglog(&["verify", dest.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let log = seglog::Log::open_blocking(&dest, seglog::Options::default()).unwrap();
    let n: usize = (0..3)
        .map(|e| log.read(&format!("exec-{e}")).unwrap().len())
        .sum();
    assert_eq!(n, events);
    // Status shows the new owner; a second restore into the same directory is refused.
    assert!(text(&seglog(&["remote", "status", &url])).contains("owner epoch 2"));
    drop(log);
    let o = seglog(&["restore", &url, dest.to_str().unwrap()]);
    assert_clean_failure(&o, 3);
}

#[test]
fn restore_lazy_leaves_the_sealed_segments_in_the_bucket() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, events) = shipped(tmp.path());
    let dest = tmp.path().join("b");
    let o = seglog(&["restore", "--lazy", &url, dest.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", super::err(&o));
    assert!(text(&o).contains("left in the bucket"), "{}", text(&o));
    let names: Vec<String> = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let count = |suffix: &str| names.iter().filter(|n| n.ends_with(suffix)).count();
    assert!(count(".off") > 0, "{names:?}");
    // Each stub has its checkpoint; the one segment file is the fresh, empty one.
    assert!(count(".idx") >= count(".off"), "{names:?}");
    assert_eq!(count(".seg"), 1, "{names:?}");
    // `verify` finds every stub with its checkpoint.
    let o = seglog(&["verify", dest.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let listed = json_lines(&o)
        .iter()
        .filter(|v| v["kind"] == "offloaded_segment" && v["checkpoint"]["status"] == "ok")
        .count();
    assert_eq!(listed, count(".off"), "{}", text(&o));
    // An application that reads through the bucket reads every event.
    let log = seglog::Log::open_blocking(&dest, seglog::Options::default()).unwrap();
    seglog_tier::ReadThrough::new(
        Arc::new(LocalFileSystem::new()),
        seglog_tier::ReadThroughOptions::default(),
    )
    .unwrap()
    .attach(&log);
    let n: usize = (0..3)
        .map(|e| log.read(&format!("exec-{e}")).unwrap().len())
        .sum();
    assert_eq!(n, events);
}

#[test]
fn remote_refuses_an_unsupported_url() {
    let o = seglog(&["remote", "status", "ftp://host/x"]);
    assert_clean_failure(&o, 3);
}

/// The JSON lines of `o`'s stdout.
fn json_lines(o: &std::process::Output) -> Vec<serde_json::Value> {
    text(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The one object in `<bucket>/p/<folder>` whose name starts with `first_lsn` (20 digits).
fn object_file(root: &std::path::Path, folder: &str) -> std::path::PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(root.join("bucket/p").join(folder))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.remove(1)
}

#[test]
fn remote_verify_checks_every_object_and_record_of_the_newest_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, _) = shipped(tmp.path());
    let o = seglog(&["remote", "verify", &url]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o), super::err(&o));
    let out = text(&o);
    assert!(out.contains("manifest 2: owner epoch 1"), "{out}");
    assert!(out.contains("objects match the manifest"), "{out}");
    assert!(
        out.contains("checkpoint: ok"),
        "checkpoints were compared: {out}"
    );
    let o = seglog(&["remote", "verify", &url, "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let lines = json_lines(&o);
    let verdict = lines.last().unwrap();
    assert_eq!(verdict["kind"], "remote_verdict");
    assert_eq!(verdict["health"], "clean");
    assert_eq!(verdict["object_problems"], 0);
    let segments = lines
        .iter()
        .filter(|l| l["kind"] == "verified_segment")
        .count();
    assert!(segments >= 2, "{lines:?}");
    assert!(
        verdict["objects"].as_u64().unwrap() >= 2 * segments as u64,
        "segments and checkpoints: {verdict}"
    );
    // It only read: no manifest was written (a claim would have made manifest 3).
    assert!(text(&seglog(&["remote", "status", &url])).contains("manifest 2: owner epoch 1"));
}

#[test]
fn remote_verify_reports_a_missing_or_altered_object_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, _) = shipped(tmp.path());
    // A bit flipped in a segment object, a checkpoint object gone.
    let segment = object_file(tmp.path(), "segments");
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&segment, bytes).unwrap();
    std::fs::remove_file(object_file(tmp.path(), "checkpoints")).unwrap();
    let o = seglog(&["remote", "verify", &url]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("missing"), "{out}");
    assert!(out.contains("differ"), "{out}");
    assert!(out.contains("2 of "), "{out}");
    let o = seglog(&["remote", "verify", &url, "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let lines = json_lines(&o);
    let problems = lines
        .iter()
        .filter(|l| l["kind"] == "remote_object_problem")
        .count();
    assert_eq!(problems, 2, "{lines:?}");
    assert_eq!(lines.last().unwrap()["health"], "corruption");
    // dump refuses to show a log whose objects differ from the manifest.
    let o = seglog(&["remote", "dump", &url]);
    assert_clean_failure(&o, 2);
}

#[test]
fn remote_verify_finds_a_damaged_record_that_the_manifest_vouches_for() {
    // Someone rewrote a segment object and a manifest to match it: every object matches its
    // entry, but a record's checksum does not. Sealed: corruption (2), not a torn tail.
    let tmp = tempfile::tempdir().unwrap();
    let (url, _) = shipped(tmp.path());
    let segment = object_file(tmp.path(), "segments");
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();
    let manifest_path = tmp.path().join("bucket/p/manifest/00000000000000000002");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let name = segment.file_name().unwrap().to_str().unwrap().to_owned();
    for s in m["segments"].as_array_mut().unwrap() {
        if s["segment"]["key"].as_str().unwrap().ends_with(&name) {
            s["segment"]["crc32"] = crc32fast::hash(&bytes).into();
        }
    }
    m["manifest_id"] = 3.into();
    std::fs::write(
        tmp.path().join("bucket/p/manifest/00000000000000000003"),
        serde_json::to_vec(&m).unwrap(),
    )
    .unwrap();
    let o = seglog(&["remote", "verify", &url]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("CORRUPT"), "{}", text(&o));
    let o = seglog(&["remote", "dump", &url]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn remote_dump_shows_the_shipped_records_as_dump_shows_them_locally() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, events) = shipped(tmp.path());
    let o = seglog(&["remote", "dump", &url, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", super::err(&o));
    let remote: Vec<_> = json_lines(&o)
        .into_iter()
        .filter(|l| l["kind"] == "record")
        .collect();
    let shipped_events: u64 = remote
        .iter()
        .map(|r| r["last_seq"].as_u64().unwrap() - r["first_seq"].as_u64().unwrap() + 1)
        .sum();
    assert_eq!(shipped_events, events as u64);
    let last_lsn = remote.last().unwrap()["lsn"].as_u64().unwrap().to_string();
    let local = seglog(&[
        "dump",
        tmp.path().join("a").to_str().unwrap(),
        "--json",
        "--to-lsn",
        &last_lsn,
    ]);
    let local: Vec<_> = json_lines(&local)
        .into_iter()
        .filter(|l| l["kind"] == "record")
        .collect();
    assert_eq!(remote, local);
    // dump's options apply.
    let o = seglog(&["remote", "dump", &url, "--execution", "exec-1", "--decode"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o).contains("exec-1") && !text(&o).contains("exec-2"),
        "{}",
        text(&o)
    );
}

#[test]
fn remote_verify_of_an_empty_prefix_says_nothing_was_shipped() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("file://{}", tmp.path().display());
    let o = seglog(&["remote", "verify", &url]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).contains("nothing was shipped"), "{}", text(&o));
}

/// `seglog verify` of a log whose shipped segments were offloaded (read-through): it lists
/// them apart, clean; a missing checkpoint of one is corruption (its records cannot be
/// indexed), exit 2.
#[test]
#[allow(clippy::field_reassign_with_default)]
fn verify_lists_offloaded_segments_and_a_missing_checkpoint_of_one_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let offloaded = rt.block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let mut options = seglog::Options::default();
        options.segment_size_bytes = 8 * 1024;
        let log = seglog::Log::open(&dir, options).await.unwrap();
        let tier = seglog_tier::Tier::claim(store.clone(), ObjectPath::from("p"))
            .await
            .unwrap();
        let read_through =
            seglog_tier::ReadThrough::new(store, seglog_tier::ReadThroughOptions::default())
                .unwrap();
        read_through.attach(&log);
        for i in 0..100u32 {
            log.append(&format!("exec-{}", i % 3), "t", "x".repeat(200).as_bytes())
                .await
                .unwrap();
        }
        read_through.ship_and_offload(&tier, &log).await.unwrap();
        let offloaded = log.offloaded_segments();
        log.close().unwrap();
        offloaded
    });
    assert!(offloaded.len() >= 2);
    let o = seglog(&["verify", dir.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", super::err(&o));
    let out = text(&o);
    let kinds: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let listed = kinds
        .iter()
        .filter(|v| v["kind"] == "offloaded_segment" && v["checkpoint"]["status"] == "ok")
        .count();
    assert_eq!(listed, offloaded.len(), "{out}");
    let o = seglog(&["verify", dir.to_str().unwrap()]);
    assert!(text(&o).contains("offloaded seg"), "{}", text(&o));
    std::fs::remove_file(dir.join(seglog_index::checkpoint::checkpoint_file_name(
        offloaded[0].first_lsn,
    )))
    .unwrap();
    let o = seglog(&["verify", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        super::err(&o).contains("offloaded segment"),
        "{}",
        super::err(&o)
    );
}

/// `seglog backup` of a directory restored lazily (its sealed segments offloaded to the
/// bucket): refused without the bucket (the copy would miss their events); with `--bucket`
/// they are downloaded into the copy, which verifies clean and reads every event without
/// the bucket.
#[test]
fn backup_of_a_lazily_restored_log_downloads_its_offloaded_segments_with_the_bucket() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, events) = shipped(tmp.path());
    let dir = tmp.path().join("b");
    let o = seglog(&["restore", "--lazy", &url, dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", super::err(&o));
    let stubs = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".off")
        })
        .count();
    assert!(stubs > 0);

    let refused = tmp.path().join("no-bucket");
    let o = seglog(&["backup", dir.to_str().unwrap(), refused.to_str().unwrap()]);
    assert_clean_failure(&o, 3);
    assert!(super::err(&o).contains("offloaded"), "{}", super::err(&o));

    let copy = tmp.path().join("copy");
    let o = seglog(&[
        "backup",
        dir.to_str().unwrap(),
        copy.to_str().unwrap(),
        "--bucket",
        &url,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", super::err(&o));
    let line = &json_lines(&o)[0];
    assert_eq!(
        line["segments_downloaded"].as_u64(),
        Some(stubs as u64),
        "{line}"
    );
    let names: Vec<String> = std::fs::read_dir(&copy)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".off")), "{names:?}");
    let o = seglog(&["verify", copy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let log = seglog::Log::open_blocking(&copy, seglog::Options::default()).unwrap();
    assert!(log.offloaded_segments().is_empty());
    let n: usize = (0..3)
        .map(|e| log.read(&format!("exec-{e}")).unwrap().len())
        .sum();
    assert_eq!(n, events);
}

#[test]
fn remote_events_lists_an_executions_shipped_events_as_events_does_locally() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, _) = shipped(tmp.path());
    let o = seglog(&["remote", "events", &url, "exec-1", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", super::err(&o));
    let remote = json_lines(&o);
    // Every event of exec-1 was shipped (the log rolled before the ship).
    assert_eq!(remote.len(), 33, "{}", text(&o));
    let local = seglog(&[
        "events",
        tmp.path().join("a").to_str().unwrap(),
        "exec-1",
        "--json",
    ]);
    assert_eq!(remote, json_lines(&local));
    // events' options apply.
    let o = seglog(&["remote", "events", &url, "exec-1", "--from-seq", "30"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o).lines().count(), 1 + 4, "{}", text(&o));
    // An execution the log does not hold: as locally.
    let remote = seglog(&["remote", "events", &url, "nobody"]);
    let local = seglog(&["events", tmp.path().join("a").to_str().unwrap(), "nobody"]);
    assert_eq!(remote.status.code(), local.status.code());
}

/// Ships a log with chunk shipping (`with_active_chunks`): a few sealed segments, then
/// `tail_events` more in the active segment, shipped as chunks only. Returns the URL, the
/// log's directory and the events shipped in all.
#[allow(clippy::field_reassign_with_default)]
fn shipped_with_chunks(root: &std::path::Path, tail_events: u32) -> (String, std::path::PathBuf) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let bucket = root.join("bucket");
        std::fs::create_dir_all(&bucket).unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let prefix = ObjectPath::from_absolute_path(bucket.join("p")).unwrap();
        let mut options = seglog::Options::default();
        options.segment_size_bytes = 8 * 1024;
        options.checkpoints = seglog::CheckpointMode::Inline;
        let dir = root.join("a");
        let log = seglog::Log::open(&dir, options).await.unwrap();
        let tier = seglog_tier::Tier::claim(store, prefix)
            .await
            .unwrap()
            .with_active_chunks();
        let append = |i: u32| {
            let log = log.clone();
            async move {
                log.append(
                    &format!("exec-{}", i % 3),
                    "t",
                    format!("event {i} {}", "x".repeat(100)).as_bytes(),
                )
                .await
                .unwrap();
            }
        };
        for i in 0..100u32 {
            append(i).await;
        }
        log.roll().await.unwrap();
        tier.ship(&log).await.unwrap();
        // The active segment, shipped as chunks (two rounds, so two chunks).
        for i in 100..100 + tail_events {
            append(i).await;
            if i == 100 + tail_events / 2 {
                tier.ship(&log).await.unwrap();
            }
        }
        let shipped = tier.ship(&log).await.unwrap();
        assert_eq!(shipped.chunks_uploaded, 1, "{shipped:?}");
        log.close().unwrap();
        (format!("file://{}", bucket.join("p").display()), dir)
    })
}

#[test]
fn remote_events_dump_and_verify_include_the_active_segments_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, dir) = shipped_with_chunks(tmp.path(), 20);
    let local_dir = dir.to_str().unwrap();
    // Every event of exec-1 was shipped: the sealed segments' and the chunks'.
    let o = seglog(&["remote", "events", &url, "exec-1", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", super::err(&o));
    let local = seglog(&["events", local_dir, "exec-1", "--json"]);
    assert_eq!(json_lines(&o).len(), 40, "{}", text(&o));
    assert_eq!(json_lines(&o), json_lines(&local));
    // dump shows every record the bucket holds, the chunks' among them.
    let remote = seglog(&["remote", "dump", &url, "--json"]);
    assert_eq!(remote.status.code(), Some(0), "{}", super::err(&remote));
    let records = |o: &std::process::Output| {
        json_lines(o)
            .into_iter()
            .filter(|l| l["kind"] == "record")
            .map(|l| l["lsn"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    let local = seglog(&["dump", local_dir, "--json"]);
    assert_eq!(records(&remote), records(&local));
    assert_eq!(records(&remote).len(), 120);
    // verify checks the chunks' records too, and says it read them.
    let verified = seglog(&["remote", "verify", &url]);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
    assert!(text(&verified).contains("chunks"), "{}", text(&verified));
}

#[test]
fn remote_verify_reports_a_damaged_chunk_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, _) = shipped_with_chunks(tmp.path(), 20);
    let chunks = tmp.path().join("bucket/p/chunks");
    let folder = std::fs::read_dir(&chunks)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut first: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    first.sort();
    let mut bytes = std::fs::read(&first[0]).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x55;
    std::fs::write(&first[0], &bytes).unwrap();
    let verified = seglog(&["remote", "verify", &url]);
    assert_eq!(verified.status.code(), Some(2), "{}", text(&verified));
    let events = seglog(&["remote", "events", &url, "exec-1"]);
    assert_eq!(events.status.code(), Some(2), "{}", text(&events));
}
