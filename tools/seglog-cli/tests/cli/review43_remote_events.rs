//! Review 43: `seglog remote events` on a shipped (sealed) segment whose last record is
//! damaged, the manifest vouching for the object. `remote dump` calls that corruption (exit 2,
//! `sealed_only`); `remote events` of an execution whose only events are in the damaged record
//! exits 4 ("no events for execution"), telling the user the bytes were unacknowledged: the
//! damage in an acknowledged, shipped segment is reported as an execution that never existed.
//!
//! Fixed where `events` decides health: with `all_sealed` (set by `remote events`), a torn
//! tail is corruption.

use super::{seglog, text};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use std::sync::Arc;

#[allow(clippy::field_reassign_with_default)]
#[test]
fn remote_events_of_an_execution_only_in_a_damaged_shipped_record_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(async {
        let bucket = root.join("bucket");
        std::fs::create_dir_all(&bucket).unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let prefix = ObjectPath::from_absolute_path(bucket.join("p")).unwrap();
        let mut options = seglog::Options::default();
        options.segment_size_bytes = 8 * 1024;
        options.checkpoints = seglog::CheckpointMode::Inline;
        let log = seglog::Log::open(root.join("a"), options).await.unwrap();
        let tier = seglog_tier::Tier::claim(store, prefix).await.unwrap();
        for i in 0..30u32 {
            log.append(
                &format!("exec-{}", i % 3),
                "t",
                format!("event {i}").as_bytes(),
            )
            .await
            .unwrap();
        }
        log.append("victim", "t", b"VICTIM-PAYLOAD-VICTIM-PAYLOAD")
            .await
            .unwrap();
        log.roll().await.unwrap();
        tier.ship(&log).await.unwrap();
        log.close().unwrap();
        format!("file://{}", bucket.join("p").display())
    });
    // The victim's record is damaged in the object, and a manifest made to match it.
    let mut files: Vec<_> = std::fs::read_dir(root.join("bucket/p/segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let segment = files.last().unwrap().clone();
    let mut bytes = std::fs::read(&segment).unwrap();
    let needle = b"VICTIM-PAYLOAD";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("victim payload in the last shipped segment");
    bytes[at + 3] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();
    let mut manifests: Vec<_> = std::fs::read_dir(root.join("bucket/p/manifest"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    manifests.sort();
    let newest = manifests.last().unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(newest).unwrap()).unwrap();
    let name = segment.file_name().unwrap().to_str().unwrap().to_owned();
    for s in m["segments"].as_array_mut().unwrap() {
        if s["segment"]["key"].as_str().unwrap().ends_with(&name) {
            s["segment"]["crc32"] = crc32fast::hash(&bytes).into();
        }
    }
    let id = m["manifest_id"].as_u64().unwrap() + 1;
    m["manifest_id"] = id.into();
    std::fs::write(
        root.join(format!("bucket/p/manifest/{id:020}")),
        serde_json::to_vec(&m).unwrap(),
    )
    .unwrap();
    let dump = seglog(&["remote", "dump", &url]);
    assert_eq!(dump.status.code(), Some(2), "remote dump: {}", text(&dump));
    let o = seglog(&["remote", "events", &url, "victim"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "remote events calls damage in a shipped segment: stdout {} stderr {}",
        text(&o),
        super::err(&o)
    );
}
