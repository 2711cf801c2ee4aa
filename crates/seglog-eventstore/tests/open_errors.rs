//! Opening a store reports seglog's typed error, so a caller can tell a log another process
//! holds from damage or I/O without reading messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_eventstore::{SeglogEventStore, SeglogStreamStore};

#[tokio::test]
async fn a_store_whose_log_is_held_elsewhere_says_so_in_its_type() {
    let dir = tempfile::tempdir().unwrap();
    let _held = SeglogEventStore::open(dir.path()).await.unwrap();
    let err = SeglogEventStore::open(dir.path()).await.unwrap_err();
    assert!(err.is_locked(), "{err}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    let err = SeglogStreamStore::open(dir.path()).await.unwrap_err();
    assert!(err.is_locked(), "{err}");
    assert!(!err.is_corruption());
}
