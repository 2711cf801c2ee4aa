//! Review 48: `seglog remote verify / dump / events` reading the active segment's chunks
//! (`seglog_tier::fetch_active_segment`).

use super::{err, seglog, text};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

struct Owner {
    rt: tokio::runtime::Runtime,
    log: seglog::Log,
    tier: seglog_tier::Tier,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    url: String,
    sealed: usize,
}

/// A log with `sealed_events` events of 2 KiB in 8 KiB segments (shipped sealed), then
/// `tail` events of execution "tail" in the active segment, shipped as chunks. The owner
/// stays open.
#[allow(clippy::field_reassign_with_default)]
fn owner(root: &std::path::Path, sealed_events: u32, tail: u32) -> Owner {
    let rt = rt();
    let (log, tier, store, prefix, sealed) = rt.block_on(async {
        let bucket = root.join("bucket");
        std::fs::create_dir_all(&bucket).unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let prefix = ObjectPath::from_absolute_path(bucket.join("p")).unwrap();
        let mut options = seglog::Options::default();
        options.segment_size_bytes = 8 * 1024;
        let log = seglog::Log::open(root.join("a"), options).await.unwrap();
        let tier = seglog_tier::Tier::claim(store.clone(), prefix.clone())
            .await
            .unwrap()
            .with_active_chunks();
        // Five events of "tail" in the first sealed segment, too.
        for i in 0..5 {
            log.append("tail", "t", format!("early event {i}").as_bytes())
                .await
                .unwrap();
        }
        for i in 0..sealed_events {
            log.append(&format!("exec-{}", i % 3), "t", "y".repeat(2000).as_bytes())
                .await
                .unwrap();
        }
        log.roll().await.unwrap();
        tier.ship(&log).await.unwrap();
        for i in 0..tail {
            log.append("tail", "t", format!("tail event {i}").as_bytes())
                .await
                .unwrap();
        }
        let shipped = tier.ship(&log).await.unwrap();
        assert!(shipped.chunks_uploaded >= 1, "{shipped:?}");
        let m = seglog_tier::latest_manifest(store.as_ref(), &prefix)
            .await
            .unwrap()
            .unwrap();
        assert!(m.active.is_some());
        let sealed = m.segments.len();
        (log, tier, store, prefix, sealed)
    });
    Owner {
        rt,
        log,
        tier,
        store,
        prefix,
        url: format!("file://{}", root.join("bucket").join("p").display()),
        sealed,
    }
}

fn signal(pid: u32, sig: &str) {
    let s = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(s.success());
}

/// The owner seals the active segment (its records now in a sealed segment the newest
/// manifest names) and its orphan collection deletes the old chunk folder, while
/// `remote events` is downloading the sealed segments of the manifest before: the events
/// of the segment that was active are in the bucket (sealed), yet none is shown, exit 0
/// (an empty listing of the chunk folder is taken as "no record shipped" and never sends
/// the read through the newer manifest, as a missing sealed object does).
#[test]
fn remote_events_loses_the_active_segments_events_when_it_is_sealed_and_collected_meanwhile() {
    let tmp = tempfile::tempdir().unwrap();
    let o = owner(tmp.path(), 600, 30);
    assert!(o.sealed > 50, "{}", o.sealed);
    // Before the race: every tail event is shown.
    let before = seglog(&["remote", "events", &o.url, "tail", "--json"]);
    assert_eq!(before.status.code(), Some(0), "{}", err(&before));
    assert_eq!(text(&before).lines().count(), 35, "{}", text(&before));

    let tmpdir = tmp.path().join("tmpdir");
    std::fs::create_dir_all(&tmpdir).unwrap();
    let mut raced = false;
    let mut output = None;
    for _attempt in 0..30 {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_seglog"))
            .args(["remote", "events", &o.url, "tail", "--json"])
            .env("NO_COLOR", "1")
            .env("TMPDIR", &tmpdir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        // The copy's directory appears once the manifest is read.
        let deadline = Instant::now() + Duration::from_secs(20);
        let copy = loop {
            if let Some(e) = std::fs::read_dir(&tmpdir).unwrap().flatten().next() {
                break Some(e.path());
            }
            if Instant::now() > deadline {
                break None;
            }
            std::hint::spin_loop();
        };
        signal(pid, "-STOP");
        let written = copy
            .as_ref()
            .and_then(|c| std::fs::read_dir(c).ok())
            .map_or(usize::MAX, |d| d.count());
        if written + 1 < o.sealed {
            // Still downloading the sealed segments: the chunks are not listed yet.
            o.rt.block_on(async {
                o.log.roll().await.unwrap();
                o.tier.ship(&o.log).await.unwrap();
                let m = seglog_tier::latest_manifest(o.store.as_ref(), &o.prefix)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    m.segments.len(),
                    o.sealed + 1,
                    "the active segment is sealed"
                );
                let report = o.tier.collect_orphans(Duration::ZERO).await.unwrap();
                assert!(
                    report.deleted.iter().any(|k| k.contains("/chunks/")),
                    "{report:?}"
                );
            });
            raced = true;
        }
        signal(pid, "-CONT");
        let out = child.wait_with_output().unwrap();
        // Whatever this attempt found, the copy directory is removed.
        for e in std::fs::read_dir(&tmpdir).unwrap().flatten() {
            let _ = std::fs::remove_dir_all(e.path());
        }
        if raced {
            output = Some(out);
            break;
        }
    }
    assert!(raced, "never caught the download in the window");
    let out = output.unwrap();
    // The bucket holds all 35 events of "tail" (5 in the first sealed segment, 30 in the
    // newly sealed one): all must be shown, or the command must fail.
    let shown = text(&out).lines().count();
    assert!(
        shown == 35 || out.status.code() != Some(0),
        "exit {:?}, {shown} of 35 events shown; stderr: {}",
        out.status.code(),
        err(&out)
    );
}

fn encode_chunk(
    active: &seglog_tier::ActiveSegment,
    index: u64,
    start: u64,
    epoch: u64,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"SEGLOGCK");
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    for v in [
        active.number,
        active.first_lsn,
        active.record_salt,
        index,
        start,
        epoch,
        payload.len() as u64,
    ] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&b);
    crc.update(payload);
    b.extend_from_slice(&crc.finalize().to_le_bytes());
    b.extend_from_slice(payload);
    b
}

/// The active segment's chunks hold a segment header's worth of bytes that are not its
/// header (zeros: no writer ships those; the segment's file starts with its header). The
/// bucket is damaged; `remote verify` says all objects match, exit 0.
#[test]
fn remote_verify_calls_a_foreign_header_in_the_active_chunks_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let o = owner(tmp.path(), 20, 5);
    let (url, store, prefix) = (o.url.clone(), o.store.clone(), o.prefix.clone());
    let epoch = o.tier.epoch();
    o.log.close().unwrap();
    o.rt.block_on(async {
        let m = seglog_tier::latest_manifest(store.as_ref(), &prefix)
            .await
            .unwrap()
            .unwrap();
        let active = m.active.unwrap();
        let folder = seglog_tier::chunk_folder(&prefix, &active);
        let dir = std::path::PathBuf::from(format!("/{folder}"));
        assert!(dir.is_dir(), "{}", dir.display());
        std::fs::remove_dir_all(&dir).unwrap();
        let payload = vec![0u8; seglog_segment::format::SEGMENT_HEADER_LEN];
        let chunk = encode_chunk(&active, 0, 0, epoch, &payload);
        std::fs::create_dir_all(&dir).unwrap();
        let key = seglog_tier::chunk_key(&folder, 0);
        std::fs::write(format!("/{key}"), chunk).unwrap();
    });
    let v = seglog(&["remote", "verify", &url]);
    assert_eq!(
        v.status.code(),
        Some(2),
        "a chunk whose segment header is zeros is not a clean bucket: {}{}",
        text(&v),
        err(&v)
    );
}
