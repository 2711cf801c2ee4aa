//! Review 98: `Log::append_encoded_joining_at` (commit 00f2213) racing an erasure that does
//! not create the execution again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::{CompactOptions, Log, Options};
use std::sync::mpsc;

const ERASED: &str = "erased-tenant";
const IF_NEW: &str = "~no-tenant";

/// The documentation: "the record joins the tenant `execution` has ... and only a new
/// execution is created for `tenant_if_new`". A joining append that reads the tenant
/// while the execution is still indexed, and submits after the erasure removed it, created
/// a *new* execution (sequence 1) under the erased tenant, not `tenant_if_new`: the submit
/// found no mismatch (there was no execution any more), so the retry loop never read the
/// tenant again, and the erased tenant's name was back in the log right after its erasure,
/// holding an event that was never its own. (Failed 6 of 6 before the submit checked the
/// joined tenant under the index lock.)
#[test]
fn a_joining_append_after_an_erasure_creates_the_execution_for_tenant_if_new() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default().max_record_size_bytes(Some(16 << 20));
    let log = Log::open_blocking(dir.path(), opts).unwrap();
    // A large payload: laying it out and checksumming it (between the tenant look-up and
    // the submit) takes a while.
    let payload = vec![7u8; 12 << 20];
    let mut wrong = Vec::new();
    let mut created = 0;
    for i in 0..6 {
        let exec = format!("x-{i}");
        log.append_blocking(&exec, ERASED, b"first").unwrap();
        let view = log.compaction_view(false).unwrap();
        let plan = policy::drop_tenant(&view, ERASED);
        let (tx, rx) = mpsc::channel();
        let mut joiner = None;
        log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {
            if joiner.is_none() {
                // The execution is still in the index (the rewrite runs before it goes).
                let log = log.clone();
                let exec = exec.clone();
                let payload = payload.clone();
                let tx = tx.clone();
                joiner = Some(std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    let r = rt.block_on(log.append_encoded_joining_at(
                        &exec,
                        IF_NEW,
                        0,
                        &[payload.as_slice()],
                    ));
                    tx.send(r.map(|r| r.first_seq)).unwrap();
                }));
            }
        })
        .unwrap();
        joiner.unwrap().join().unwrap();
        match rx.recv().unwrap() {
            Ok(1) => {
                created += 1;
                let tenant = log.tenant_of(&exec).unwrap();
                if tenant.as_deref() != Some(IF_NEW) {
                    wrong.push(format!("{exec}: {tenant:?}"));
                }
            }
            Ok(seq) => panic!("{exec}: joined at {seq}, yet the erasure reported success"),
            Err(seglog::Error::Erasing { .. }) => {}
            Err(e) => panic!("{exec}: {e}"),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {created} executions a joining append created after their erasure are under \
         the erased tenant, not tenant_if_new: {wrong:?}",
        wrong.len()
    );
    assert!(created > 0, "no joining append came after the erasure");
    log.close().unwrap();
}
