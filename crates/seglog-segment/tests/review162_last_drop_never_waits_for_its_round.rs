//! Review 162: the last handle's drop must not wait for a round that waits for the dropping
//! thread. A seal listener that waits for a lock the dropping thread holds is inside a round
//! on the round runner (a cancelled append's). A drop that waited for the runner's rounds
//! (tried after review 153, commit 68dff88) waited for that round while the round waited
//! for the dropping thread: a deadlock, cut only by a 5 s bound. The drop now returns at
//! once; the listener then gets its lock, the round ends, the directory lock goes with it,
//! an open in this process waits for that (`departing`), and the acknowledged record reads
//! back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 4096,
        max_record_size_bytes: 3000,
        ..SegmentOptions::default()
    }
}

fn batch<'a>(payload: &'a [&'a [u8]; 1]) -> EventBatch<'a, &'a [u8]> {
    EventBatch {
        encoding: 0,
        execution_id: b"x",
        tenant_id: b"tenant",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: payload,
    }
}

#[test]
fn a_last_drop_whose_round_waits_for_the_dropping_thread_returns_at_once_and_loses_nothing() {
    let fs = SimFs::new();
    fs.set_sync_latency(Duration::from_millis(2));
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    // The caller's lock: held by the thread that drops the last handle, wanted by the
    // seal listener.
    let gate = Arc::new(Mutex::new(()));
    let entered = Arc::new(AtomicBool::new(false));
    {
        let (gate, entered) = (gate.clone(), entered.clone());
        log.set_seal_listener(Box::new(move |_, _| {
            entered.store(true, Ordering::SeqCst);
            drop(gate.lock().unwrap());
        }));
    }
    let first = [b'a'; 2100];
    let acked = log.append(&batch(&[&first[..]])).unwrap();

    // The dropping thread takes the gate first and waits for the log.
    let (give, take) = mpsc::channel::<SegmentLog<SimFs>>();
    let (locked_tx, locked_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let dropper = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            let held = gate.lock().unwrap();
            locked_tx.send(()).unwrap();
            let log = take.recv().unwrap();
            let started = Instant::now();
            drop(log);
            let took = started.elapsed();
            drop(held);
            done_tx.send(took).unwrap();
        })
    };
    locked_rx.recv().unwrap();

    // A spawned task's append that cannot fit the segment: its round, on the runner, seals
    // the first record's segment and calls the listener, which waits for the gate. The
    // task's future is dropped after its first poll.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let in_task = log.clone();
    rt.block_on(async move {
        tokio::spawn(async move {
            let second = [b'b'; 2100];
            let payload = [&second[..]];
            let second = batch(&payload);
            let mut append = std::pin::pin!(in_task.append_async(&second));
            std::future::poll_fn(|cx| {
                let _ = std::future::Future::poll(append.as_mut(), cx);
                std::task::Poll::Ready(())
            })
            .await;
        })
        .await
        .unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !entered.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "setup: the runner's round never called the seal listener"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    give.send(log).unwrap();
    let took = done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the last handle's drop waited for a round that waits for the dropping thread");
    dropper.join().unwrap();
    assert!(
        took < Duration::from_secs(1),
        "the last handle's drop waited {took:?} for a round that waited for the dropping thread"
    );

    drop(rt);
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ())
        .expect("the reopen did not wait for the departing log's round");
    let rec = log.read(acked.position).unwrap();
    let events: Vec<&[u8]> = rec.view().events().collect();
    assert_eq!(events, vec![&first[..]]);
    log.close().unwrap();
}
