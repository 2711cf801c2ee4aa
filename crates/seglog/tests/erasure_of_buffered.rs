//! A tenant's erasure covers its buffered appends.
//!
//! A buffered append is numbered and indexed when it returns, and becomes durable (and
//! readable) with a later commit round. An erasure of its tenant that runs after it
//! returned must erase it too — like a RocksDB delete after an unsynced put — whether a
//! commit round has made it durable meanwhile (it is then waiting to be published to
//! readers) or not (the erasure's roll makes it durable, and then drops it). Before the
//! fix, the policies' view listed only executions with a *published* event, so such an
//! execution was missing from `drop_tenant`'s plan and survived the erasure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::{CompactOptions, Log, Options};

const GONE: &str = "gone-tenant";
const KEPT: &str = "kept-tenant";

fn erase(log: &Log, tenant: &str) {
    let plan = policy::drop_tenant(&log.compaction_view(false).unwrap(), tenant);
    log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
}

/// Checks the erased execution is gone and the kept one whole, before and after a reopen.
fn check(dir: &std::path::Path, log: Log) {
    check_open(&log);
    log.close().unwrap();
    let log = Log::open_blocking(dir, Options::default()).unwrap();
    check_open(&log);
    log.close().unwrap();
}

fn check_open(log: &Log) {
    assert!(
        !log.exists("erased").unwrap(),
        "the erased tenant's buffered execution survived: {:?}",
        log.read("erased").unwrap()
    );
    assert_eq!(log.read("kept").unwrap().len(), 1);
}

#[test]
fn an_erasure_drops_a_buffered_execution_a_commit_round_made_durable() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), Options::default()).unwrap();
    log.append_batch_buffered("erased", GONE, &[b"buffered"])
        .unwrap();
    // A durable append's commit round makes the buffered one durable too; nobody has read
    // since, so it is not published yet.
    log.append_blocking("kept", KEPT, b"durable").unwrap();
    erase(&log, GONE);
    log.sync_blocking().unwrap();
    check(dir.path(), log);
}

#[test]
fn an_erasure_drops_a_buffered_execution_not_yet_durable() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), Options::default()).unwrap();
    log.append_blocking("kept", KEPT, b"durable").unwrap();
    log.append_batch_buffered("erased", GONE, &[b"buffered"])
        .unwrap();
    erase(&log, GONE);
    log.sync_blocking().unwrap();
    check(dir.path(), log);
}
