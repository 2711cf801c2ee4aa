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
fn shipped(root: &std::path::Path) -> (String, usize) {
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
fn remote_refuses_an_unsupported_url() {
    let o = seglog(&["remote", "status", "ftp://host/x"]);
    assert_clean_failure(&o, 3);
}
