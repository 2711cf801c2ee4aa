//! The two ways an append is numbered: inside the commit lock (the index lock tried there
//! and free), or, when the index is busy, under the index lock around an ordinary submit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::{Log, Options};
use std::time::Duration;

fn open(dir: &std::path::Path) -> Log {
    let options = Options {
        segment_size_bytes: 1 << 20,
        ..Options::default()
    };
    Log::open_blocking(dir, options).unwrap()
}

#[test]
fn an_append_that_finds_the_index_busy_waits_for_it_and_keeps_the_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    assert_eq!(log.append_blocking("e", "t", b"1").unwrap(), 1);
    let blocked = {
        // A reader holds the index: appends cannot number inside the commit lock.
        let _reader = log.shared.index.read();
        let appenders: Vec<_> = (0..4)
            .map(|i| {
                let log = log.clone();
                std::thread::spawn(move || log.append_blocking("e", "t", format!("{i}").as_bytes()))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            appenders.iter().all(|a| !a.is_finished()),
            "an append was numbered while the index was held"
        );
        appenders
    };
    let mut seqs: Vec<u64> = blocked
        .into_iter()
        .map(|a| a.join().unwrap().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, vec![2, 3, 4, 5]);
    // And the inline path after it, on the same execution.
    assert_eq!(log.append_blocking("e", "t", b"6").unwrap(), 6);
    log.close().unwrap();
    // Reopening rebuilds the index from the log, which refuses sequences out of log order.
    let log = open(dir.path());
    let events = log.read("e").unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
}
