//! Review 160 (held): the log's last handle dropped from inside a commit round — a seal
//! listener that owns it (in a `Mutex<Option<_>>`, taken and dropped at the first seal) —
//! while that round runs on the round runner (handed by a spawned task), on current-thread
//! and multi-thread runtimes. `LastHandle::drop` then runs on the runner's own thread, inside
//! the round, with the seal listener's read lock held: it must not deadlock (it takes the
//! commit lock, the directory-lock mutex and the prepared-segment slot, none of which the
//! round holds while its listener runs), its hold task must wait for the very round it was
//! called from, the appenders must end (Ok or an error, never hang), and every acknowledged
//! record must read back after the runtime's drop and a reopen, which must not find the
//! directory locked. Held on the current code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 4096,
        max_record_size_bytes: 3000,
        ..SegmentOptions::default()
    }
}

fn run(rt: tokio::runtime::Runtime) {
    let fs = SimFs::new();
    fs.set_sync_latency(Duration::from_millis(2));
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let owned: Arc<Mutex<Option<SegmentLog<SimFs>>>> = Arc::new(Mutex::new(None));
    let in_listener = owned.clone();
    log.set_seal_listener(Box::new(move |_, _| {
        // The last handle, if the tasks are done with theirs: dropped here, in the round.
        let taken = in_listener.lock().unwrap().take();
        drop(taken);
    }));
    let acked = rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..3u8 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let filler = [b'a' + t; 700];
                let payloads: [&[u8]; 1] = [&filler[..]];
                let mut out = Vec::new();
                for _ in 0..12 {
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
        let mut acked = Vec::new();
        for task in tasks {
            acked.extend(task.await.unwrap());
        }
        acked
    });
    // Only the listener's handle is left; the next seal (a cancelled append's round, on the
    // runner) drops it.
    *owned.lock().unwrap() = Some(log.clone());
    let weak_probe = log.clone();
    drop(log);
    rt.block_on(async move {
        let task = tokio::spawn(async move {
            let log = weak_probe;
            let filler = [b'z'; 2100];
            let payloads: [&[u8]; 1] = [&filler[..]];
            let batch = EventBatch {
                encoding: 0,
                execution_id: b"x",
                tenant_id: b"tenant",
                first_seq: 1,
                timestamp_unix_nanos: 0,
                payloads: &payloads,
            };
            // No two records of 2100 bytes fit in a 4 KiB segment: the second seals the first's.
            let _ = log.append_async(&batch).await;
            let mut second = std::pin::pin!(log.append_async(&batch));
            std::future::poll_fn(|cx| {
                let _ = std::future::Future::poll(second.as_mut(), cx);
                std::task::Poll::Ready(())
            })
            .await;
        });
        task.await.unwrap();
    });
    drop(rt);
    let mut reopened = None;
    for _ in 0..100 {
        match SegmentLog::open(fs.clone(), "/log", opts(), &mut ()) {
            Ok((log, _)) => {
                reopened = Some(log);
                break;
            }
            Err(e) => {
                assert!(
                    owned.lock().unwrap().is_some()
                        || matches!(e, seglog_segment::Error::Locked { .. }),
                    "{e}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    assert!(
        owned.lock().unwrap().is_none(),
        "setup: the listener never ran, its handle is still there"
    );
    let log = reopened.expect("the directory stayed locked after the log and its runtime went");
    for (a, t) in &acked {
        let rec = log.read(a.position).unwrap();
        let view = rec.view();
        let events: Vec<&[u8]> = view.events().collect();
        assert_eq!(events, vec![&[b'a' + t; 700][..]]);
    }
    log.close().unwrap();
}

fn with_timeout(name: &'static str, body: fn()) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        body();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(40)) {
        Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => t.join().unwrap(),
        Err(_) => panic!("{name}: hung"),
    }
}

#[test]
fn listener_drops_last_handle_current_thread() {
    with_timeout("current-thread", || {
        run(tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap())
    });
}

#[test]
fn listener_drops_last_handle_multi_thread() {
    with_timeout("multi-thread", || {
        run(tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap())
    });
}
