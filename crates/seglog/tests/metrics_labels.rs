//! The `metrics` feature: every figure is labelled with its log's directory, so two logs in
//! one process keep their counts apart. Run by .ci/run with `--features metrics`.
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use seglog::{Log, Options};

#[test]
fn two_logs_count_their_appends_under_their_own_label() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    metrics::with_local_recorder(&recorder, || {
        let log_a = Log::open_blocking(a.path(), Options::default()).unwrap();
        let log_b = Log::open_blocking(b.path(), Options::default()).unwrap();
        for _ in 0..3 {
            log_a.append_blocking("e", "t", b"x").unwrap();
        }
        log_b.append_blocking("e", "t", b"y").unwrap();
        log_a.stats();
    });
    let mut appends = std::collections::HashMap::new();
    let mut segments_gauges = 0;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let label = key
            .labels()
            .find(|l| l.key() == "log")
            .map(|l| l.value().to_owned())
            .unwrap_or_else(|| panic!("{} has no log label", key.name()));
        match (key.name(), value) {
            ("seglog_appends_total", DebugValue::Counter(n)) => {
                appends.insert(label, n);
            }
            ("seglog_segments", DebugValue::Gauge(_)) => {
                assert_eq!(label, a.path().display().to_string());
                segments_gauges += 1;
            }
            _ => {}
        }
    }
    assert_eq!(appends.get(&a.path().display().to_string()), Some(&3));
    assert_eq!(appends.get(&b.path().display().to_string()), Some(&1));
    assert_eq!(segments_gauges, 1);
}
