//! Micro-benchmarks of the CPU work on seglog's hot paths: laying out and sealing a record
//! (what an append costs before any I/O), decoding one (what a read or recovery costs per
//! record), the index's insert and lookup, and the MessagePack codec of the EventStore layer.
//! `cargo bench -p seglog-bench --bench micro`
#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use seglog_index::{ExecutionIndex, IndexedRecord, Location};
use seglog_segment::format::{decode_record, EncodedRecord, EventBatch, RecordScan};
use std::hint::black_box;

fn batch<'a>(payload: &'a [&'a [u8]]) -> EventBatch<'a, &'a [u8]> {
    EventBatch {
        encoding: 0,
        execution_id: b"exec_2abcdefghijklmnopqrstuvwxyz",
        tenant_id: b"tenant_42",
        first_seq: 7,
        timestamp_unix_nanos: 1,
        payloads: payload,
    }
}

fn record_format(c: &mut Criterion) {
    let mut g = c.benchmark_group("record");
    for size in [256usize, 4096] {
        let payload = vec![0x5Au8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("encode+seal {size} B"), |b| {
            b.iter(|| {
                let r = EncodedRecord::new(&batch(&[payload.as_slice()]), u32::MAX)
                    .map(|r| r.seal(3, 100, 99));
                black_box(r)
            })
        });
        let sealed = EncodedRecord::new(&batch(&[payload.as_slice()]), u32::MAX)
            .map(|r| r.seal(3, 100, 99))
            .unwrap_or_default();
        g.bench_function(format!("decode {size} B"), |b| {
            b.iter(|| {
                matches!(
                    decode_record(black_box(&sealed), 3, 1, u64::MAX),
                    RecordScan::Record(_)
                )
            })
        });
    }
    g.finish();
}

/// Inserts `n` single-event records round-robin over `ids` (1,000 executions).
fn fill(ix: &mut ExecutionIndex, ids: &[String], n: u64) {
    for k in 0..n {
        let _ = ix.insert(&IndexedRecord {
            execution: &ids[(k % 1000) as usize],
            tenant: "t",
            lsn: k + 1,
            location: Location {
                segment: 1,
                offset: 64 + (k as u32).wrapping_mul(300),
            },
            first_seq: k / 1000 + 1,
            event_count: 1,
            timestamp_unix_nanos: 0,
        });
    }
}

fn index(c: &mut Criterion) {
    let ids: Vec<String> = (0..1000).map(|i| format!("exec-{i:06}")).collect();
    c.bench_function("index insert (1000 executions)", |b| {
        b.iter_batched(
            ExecutionIndex::new,
            |mut ix| {
                fill(&mut ix, &ids, 10_000);
                ix
            },
            BatchSize::LargeInput,
        )
    });
    let mut ix = ExecutionIndex::new();
    fill(&mut ix, &ids, 100_000);
    ix.publish_all();
    c.bench_function("index locate 100 events", |b| {
        b.iter(|| black_box(ix.events(black_box("exec-000500"), 1, 100)).len())
    });
}

fn codec(c: &mut Criterion) {
    let event = enact_core::kernel::persistence::ExecutionEventData::Custom {
        event_type: "bench".into(),
        data: serde_json::Value::String("x".repeat(220)),
    };
    let bytes = seglog_eventstore::codec::encode(&event).unwrap_or_default();
    c.bench_function("msgpack encode event (~256 B)", |b| {
        b.iter(|| seglog_eventstore::codec::encode(black_box(&event)))
    });
    c.bench_function("msgpack decode event (~256 B)", |b| {
        b.iter(|| seglog_eventstore::codec::decode(1, black_box(&bytes), "e", 1))
    });
}

criterion_group!(benches, record_format, index, codec);
criterion_main!(benches);
