//! `Options` as configuration: builder methods, and the `serde` feature's file format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{CheckpointMode, Options, RecoveryMode, SyncMode};

#[test]
fn builder_methods_set_their_fields_and_leave_the_rest_at_the_defaults() {
    let options = Options::default()
        .segment_size_bytes(1 << 20)
        .max_record_size_bytes(4096)
        .checkpoints(CheckpointMode::Off)
        .sync_mode(SyncMode::Never);
    assert_eq!(options.segment_size_bytes, 1 << 20);
    assert_eq!(options.max_record_size_bytes, Some(4096));
    assert_eq!(options.checkpoints, CheckpointMode::Off);
    assert_eq!(options.sync_mode, SyncMode::Never);
    let defaults = Options::default();
    assert_eq!(options.recovery_mode, defaults.recovery_mode);
    assert_eq!(options.zero_ahead_bytes, defaults.zero_ahead_bytes);
    assert_eq!(
        options.max_record_size_bytes(None).max_record_size_bytes,
        None
    );
}

#[test]
fn a_config_file_may_give_sizes_readably_and_leave_out_any_field() {
    let options: Options = serde_json::from_str(
        r#"{"segment_size_bytes": "64 MiB", "max_record_size_bytes": 65536,
            "recovery_mode": "salvage", "checkpoints": "inline"}"#,
    )
    .unwrap();
    assert_eq!(options.segment_size_bytes, 64 << 20);
    assert_eq!(options.max_record_size_bytes, Some(65536));
    assert_eq!(options.recovery_mode, RecoveryMode::Salvage);
    assert_eq!(options.checkpoints, CheckpointMode::Inline);
    assert_eq!(options.sync_mode, Options::default().sync_mode);
    assert_eq!(
        serde_json::from_str::<Options>("{}").unwrap(),
        Options::default()
    );
}

#[test]
fn options_written_out_read_back_the_same() {
    let options = Options::default()
        .segment_size_bytes((3 << 30) + 1)
        .zero_ahead_bytes(0)
        .max_record_size_bytes(1 << 20);
    let text = serde_json::to_string(&options).unwrap();
    assert!(
        text.contains(r#""max_record_size_bytes":"1 MiB""#),
        "{text}"
    );
    assert_eq!(serde_json::from_str::<Options>(&text).unwrap(), options);
}

#[test]
fn a_bad_config_is_refused_with_what_is_wrong() {
    for (text, says) in [
        (r#"{"segment_size_bytes": "lots"}"#, "lots"),
        (r#"{"segment_bytes": 1}"#, "segment_bytes"),
        (r#"{"max_record_size_bytes": "5 GiB"}"#, "4 GiB"),
        (r#"{"sync_mode": "sometimes"}"#, "sometimes"),
    ] {
        let err = serde_json::from_str::<Options>(text)
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{text}: {err}");
    }
}

#[test]
fn retention_reads_durations_and_sizes_readably() {
    let options: Options = serde_json::from_str(
        r#"{"retention": {"max_age": "30days", "max_log_bytes": "50 GiB", "interval": "5m"}}"#,
    )
    .unwrap();
    let r = &options.retention;
    assert_eq!(r.max_age, Some(std::time::Duration::from_secs(30 * 86_400)));
    assert_eq!(r.max_log_bytes, Some(50 << 30));
    assert_eq!(r.interval, std::time::Duration::from_secs(300));
    assert!(r.is_enabled());
    assert!(!Options::default().retention.is_enabled());
    let text = serde_json::to_string(&options).unwrap();
    assert_eq!(serde_json::from_str::<Options>(&text).unwrap(), options);
}

#[test]
fn keeping_every_sealed_segment_cached_can_be_written_without_a_null() {
    // TOML has no null: `None` must have a value of its own, or a written configuration
    // would leave the field out and read back with the default (2).
    let options = Options::default().cached_sealed_segments(None);
    let text = serde_json::to_string(&options).unwrap();
    assert!(text.contains(r#""cached_sealed_segments":"all""#), "{text}");
    assert_eq!(serde_json::from_str::<Options>(&text).unwrap(), options);
    let read: Options = serde_json::from_str(r#"{"cached_sealed_segments": "all"}"#).unwrap();
    assert_eq!(read.cached_sealed_segments, None);
    let read: Options = serde_json::from_str(r#"{"cached_sealed_segments": 5}"#).unwrap();
    assert_eq!(read.cached_sealed_segments, Some(5));
    let read: Options = serde_json::from_str(r#"{"cached_sealed_segments": null}"#).unwrap();
    assert_eq!(read.cached_sealed_segments, None);
    let err = serde_json::from_str::<Options>(r#"{"cached_sealed_segments": "many"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("neither a number of segments"), "{err}");
}
