//! `Log::roll` and `Log::poison`, the hooks seglog-tier uses: a roll seals the active
//! segment as it is and appends go to a fresh segment number; a poisoned log refuses
//! appends, keeps serving reads, and reports its cause.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[tokio::test]
async fn roll_seals_the_active_segment_unchanged_and_appends_go_to_a_fresh_number() {
    let dir = tempfile::tempdir().unwrap();
    let log = seglog::Log::open(dir.path(), seglog::Options::default())
        .await
        .unwrap();
    log.append("e", "t", b"one").await.unwrap();
    let before = log.segments();
    assert_eq!(before.len(), 1);
    let sealed = log.roll().await.unwrap();
    assert_eq!(sealed, Some(before[0].number));
    assert_eq!(
        log.roll().await.unwrap(),
        None,
        "an empty active segment is not rolled"
    );
    log.append("e", "t", b"two").await.unwrap();
    let after = log.segments();
    assert_eq!(after.len(), 2);
    assert!(after[0].sealed && !after[1].sealed);
    assert_eq!(after[0].data_end, before[0].data_end, "sealed as it was");
    assert!(after[1].number > before[0].number);
    // A reopened log whose last segment is sealed and full appends after it, too.
    drop(log);
    let log = seglog::Log::open(dir.path(), seglog::Options::default())
        .await
        .unwrap();
    assert_eq!(log.read("e").unwrap().len(), 2);
}

#[tokio::test]
async fn a_poisoned_log_refuses_appends_and_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let log = seglog::Log::open(dir.path(), seglog::Options::default())
        .await
        .unwrap();
    log.append("e", "t", b"one").await.unwrap();
    log.poison("fenced by a newer owner");
    assert!(log.is_poisoned());
    let err = log.append("e", "t", b"two").await.unwrap_err();
    assert!(err.is_poisoned(), "{err}");
    assert!(err.to_string().contains("fenced by a newer owner"), "{err}");
    assert_eq!(log.read("e").unwrap().len(), 1);
}
