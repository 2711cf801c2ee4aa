//! Review 155: a seal listener that panics inside a round the round runner leads. Appends
//! from tasks must fail (poisoned) rather than hang; close must return; every acknowledged
//! record must be read back after reopen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 4096,
        max_record_size_bytes: 2048,
        ..SegmentOptions::default()
    }
}

#[test]
fn a_panicking_seal_listener_on_the_runner_poisons_without_hang_or_loss() {
    let (tx, rx) = std::sync::mpsc::channel();
    let body = std::thread::spawn(move || {
        body();
        tx.send(()).unwrap();
    });
    match rx.recv_timeout(Duration::from_secs(40)) {
        Ok(()) => body.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => body.join().unwrap(),
        Err(_) => panic!("hung: appends or close never returned after a listener panic"),
    }
}

fn body() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let seals = Arc::new(AtomicUsize::new(0));
    let s = seals.clone();
    log.set_seal_listener(Box::new(move |_, _| {
        if s.fetch_add(1, Ordering::Relaxed) == 2 {
            panic!("listener panics");
        }
    }));
    let acked: Vec<_> = rt.block_on(async {
        let mut handles = Vec::new();
        for t in 0..3u8 {
            let log = log.clone();
            handles.push(tokio::spawn(async move {
                let filler = [b'a' + t; 700];
                let payloads: [&[u8]; 1] = [&filler[..]];
                let mut out = Vec::new();
                for _ in 0..30 {
                    let batch = EventBatch {
                        encoding: 0,
                        execution_id: b"x",
                        tenant_id: b"tenant",
                        first_seq: 1,
                        timestamp_unix_nanos: 0,
                        payloads: &payloads,
                    };
                    match log.append_async(&batch).await {
                        Ok(a) => out.push((a, t)),
                        Err(_) => break,
                    }
                }
                out
            }));
        }
        let all = async {
            let mut all = Vec::new();
            for h in handles {
                all.extend(h.await.unwrap());
            }
            all
        };
        all.await
    });
    assert!(
        log.poisoned().is_some(),
        "setup: the listener never panicked"
    );
    let closed = rt.block_on(async {
        let log = log.clone();
        tokio::task::spawn_blocking(move || log.close()).await
    });
    closed.unwrap().unwrap_err();
    drop(log);
    rt.shutdown_timeout(Duration::from_secs(5));
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    for (a, t) in &acked {
        let rec = log.read(a.position).unwrap();
        let view = rec.view();
        let events: Vec<&[u8]> = view.events().collect();
        assert_eq!(
            events,
            vec![&[b'a' + t; 700][..]],
            "an acknowledged record reads back"
        );
    }
    eprintln!("acked {} records, all read back", acked.len());
}
