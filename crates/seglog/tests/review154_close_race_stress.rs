//! Review 154: close_async racing a sync close on the pool, async appenders (some cancelled)
//! and drops, on both runtime flavours. Every acknowledged append must be read back after
//! reopen, and nothing may hang.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{Log, Options};
use std::time::Duration;

fn round(rt: &tokio::runtime::Runtime, iter: usize) {
    let dir = tempfile::tempdir().unwrap();
    let acked = rt.block_on(async {
        let log = Log::open(dir.path(), Options::default().segment_size_bytes(1 << 20))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for t in 0..6usize {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..40usize {
                    let payload = vec![b'a' + (t as u8); 2000 + i];
                    let exec = format!("e{t}");
                    let fut = log.append(&exec, "t", &payload);
                    let r = if i % 7 == 3 {
                        match tokio::time::timeout(Duration::from_micros(50), fut).await {
                            Ok(r) => r,
                            Err(_) => continue,
                        }
                    } else {
                        fut.await
                    };
                    match r {
                        Ok(seq) => acked.push((exec, seq, payload)),
                        Err(_) => break,
                    }
                }
                acked
            }));
        }
        tokio::time::sleep(Duration::from_micros(200 * (iter as u64 % 10))).await;
        let first = log.close_async();
        let second = {
            let log = log.clone();
            tokio::task::spawn_blocking(move || log.close())
        };
        let third = log.close_async();
        drop(log);
        let all = async {
            let a = first.await;
            let b = second.await.unwrap();
            let c = third.await;
            let mut acked = Vec::new();
            for t in tasks {
                acked.extend(t.await.unwrap());
            }
            (a, b, c, acked)
        };
        let (a, b, c, acked) = tokio::time::timeout(Duration::from_secs(20), all)
            .await
            .expect("hang");
        a.unwrap();
        b.unwrap();
        c.unwrap();
        acked
    });
    let log =
        Log::open_blocking(dir.path(), Options::default().segment_size_bytes(1 << 20)).unwrap();
    for (exec, seq, payload) in acked {
        let events = log.read(&exec).unwrap();
        let e = events
            .iter()
            .find(|e| e.seq == seq)
            .unwrap_or_else(|| panic!("acked {exec}/{seq} lost"));
        assert_eq!(&e.payload[..], &payload[..]);
    }
    log.close().unwrap();
}

#[test]
fn close_races_multi_thread() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for i in 0..25 {
        round(&rt, i);
    }
}

#[test]
fn close_races_current_thread() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for i in 0..25 {
        round(&rt, i);
    }
}
