//! The streaming store against enact-core's own `InMemoryEventStore`, as reference: the same
//! seeded random operations (appends from many concurrent tasks, reads by execution,
//! `get_after` at every boundary with every limit around it, `latest_sequence`, reopen) give
//! the same events in the same order. Only the numbering differs (the reference numbers
//! densely from 0, seglog by global position): both must be strictly increasing, and each
//! store's answers must use its own numbers consistently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use enact_core::kernel::{
    ExecutionContext, ExecutionEvent, ExecutionEventType, ExecutionId, TenantId,
};
use enact_core::streaming::{EventLogEntry, EventStore, InMemoryEventStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seglog::{CheckpointMode, Options};
use seglog_eventstore::SeglogStreamStore;
use std::path::Path;
use std::sync::Arc;

const EXECUTIONS: usize = 12;
const TYPES: [ExecutionEventType; 6] = [
    ExecutionEventType::ExecutionStart,
    ExecutionEventType::StepStart,
    ExecutionEventType::ToolCallStart,
    ExecutionEventType::ToolCallEnd,
    ExecutionEventType::StepEnd,
    ExecutionEventType::ExecutionEnd,
];

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(16 * 1024)
        .checkpoints(CheckpointMode::Inline)
}

/// An event as both stores must give it back (everything but the sequence).
fn content(e: &EventLogEntry) -> serde_json::Value {
    serde_json::to_value(&e.event).unwrap()
}

/// Execution `i`: executions 0..4 have no tenant, the others one of two.
fn tenant_of(i: usize) -> Option<TenantId> {
    (i >= 4).then(|| TenantId::from_string(format!("tenant-{}", i % 2)))
}

/// A random event of execution `i`. Once the execution exists (`started`), a tenanted
/// execution's events sometimes leave the tenant out (they join the execution's tenant).
fn event(rng: &mut StdRng, i: usize, started: bool) -> ExecutionEvent {
    let mut ctx = ExecutionContext::new(ExecutionId::from_string(format!("exec-{i}")));
    ctx.tenant_id = tenant_of(i).filter(|_| !started || rng.random_range(0..4) != 0);
    let mut e = ExecutionEvent::new(TYPES[rng.random_range(0..TYPES.len())].clone(), ctx);
    if rng.random_bool(0.5) {
        e = e.with_payload(serde_json::json!({
            "step": rng.random_range(0..1000u32),
            "text": "y".repeat(rng.random_range(0..400)),
            "score": rng.random_range(0..100u32) as f64 / 7.0,
        }));
    }
    if rng.random_bool(0.3) {
        e = e.with_duration(rng.random_range(0..10_000));
    }
    e
}

/// The two stores, and what each numbered the events appended so far, in global order.
struct Pair {
    reference: InMemoryEventStore,
    seglog: Arc<SeglogStreamStore>,
    ref_seqs: Vec<u64>,
    seg_seqs: Vec<u64>,
}

impl Pair {
    fn assert_same(&self, what: &str, reference: &[EventLogEntry], seglog: &[EventLogEntry]) {
        let r: Vec<_> = reference.iter().map(content).collect();
        let s: Vec<_> = seglog.iter().map(content).collect();
        assert_eq!(r.len(), s.len(), "{what}: lengths differ");
        assert!(r == s, "{what}: events differ");
        for (entries, label) in [(reference, "reference"), (seglog, "seglog")] {
            assert!(
                entries.windows(2).all(|w| w[0].sequence < w[1].sequence),
                "{what}: {label}'s sequences do not increase"
            );
        }
        // Each store numbers an event the same way every time it returns it.
        for (r, s) in reference.iter().zip(seglog) {
            let i = self
                .ref_seqs
                .binary_search(&r.sequence)
                .expect("a reference sequence");
            assert_eq!(
                self.seg_seqs[i], s.sequence,
                "{what}: seglog renumbered an event"
            );
        }
    }

    async fn append_concurrently(&mut self, rng: &mut StdRng) {
        let tasks = rng.random_range(1..=16);
        let mut handles = Vec::new();
        for _ in 0..tasks {
            let events: Vec<ExecutionEvent> = (0..rng.random_range(1..=5))
                .map(|_| {
                    let i = rng.random_range(0..EXECUTIONS);
                    event(rng, i, true)
                })
                .collect();
            let store = self.seglog.clone();
            handles.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for e in events {
                    out.push(store.append(e).await.unwrap());
                }
                out
            }));
        }
        let mut appended = Vec::new();
        for h in handles {
            let mine = h.await.unwrap();
            // One task's appends are in the global order in which it made them.
            assert!(mine.windows(2).all(|w| w[0].sequence < w[1].sequence));
            appended.extend(mine);
        }
        // The appends were concurrent: any order is a valid one, and seglog's is the one the
        // reference gets.
        appended.sort_by_key(|e| e.sequence);
        for e in appended {
            assert!(self.seg_seqs.last().is_none_or(|&last| e.sequence > last));
            let r = self.reference.append(e.event.clone()).await.unwrap();
            self.ref_seqs.push(r.sequence);
            self.seg_seqs.push(e.sequence);
        }
    }

    /// Starts every execution, one after the other, its first event naming its tenant.
    async fn start_executions(&mut self, rng: &mut StdRng) {
        for i in 0..EXECUTIONS {
            let e = self.seglog.append(event(rng, i, false)).await.unwrap();
            let r = self.reference.append(e.event.clone()).await.unwrap();
            self.ref_seqs.push(r.sequence);
            self.seg_seqs.push(e.sequence);
        }
    }

    async fn check_execution(&self, i: usize) {
        let id = ExecutionId::from_string(format!("exec-{i}"));
        let r = self.reference.get_by_execution(&id).await.unwrap();
        let s = self.seglog.get_by_execution(&id).await.unwrap();
        self.assert_same(&format!("get_by_execution(exec-{i})"), &r, &s);
    }

    /// `get_after` after every event (and in the gaps of seglog's numbering), with limits
    /// 0, 1, 2, and (at the ends and a sample of positions between) the rest of the log
    /// minus one, exactly, plus one, and unbounded.
    async fn check_get_after(&self) {
        let n = self.seg_seqs.len();
        for k in 0..=n {
            let rest = n - k;
            let mut limits = vec![0, 1, 2];
            // Reads to the end cost the rest of the log each (decoded twice): at the ends
            // and near every 32nd event only.
            if k % 32 < 2 || k + 2 > n {
                limits.extend([rest.saturating_sub(1), rest, rest + 1, usize::MAX]);
            }
            for limit in limits {
                let reference = if k == 0 {
                    // The reference cannot start before its sequence 0 (`get_after(0, …)`
                    // skips it): its first event, then what follows it.
                    let mut all = match self.ref_seqs.first() {
                        Some(&first) => {
                            let mut v = self.reference.get_after(first, usize::MAX).await.unwrap();
                            let head = self
                                .reference
                                .get_by_execution(&first_execution(&self.reference).await)
                                .await
                                .unwrap();
                            v.insert(0, head.into_iter().find(|e| e.sequence == first).unwrap());
                            v
                        }
                        None => Vec::new(),
                    };
                    all.truncate(limit);
                    all
                } else {
                    self.reference
                        .get_after(self.ref_seqs[k - 1], limit)
                        .await
                        .unwrap()
                };
                let after = if k == 0 { 0 } else { self.seg_seqs[k - 1] };
                let seglog = self.seglog.get_after(after, limit).await.unwrap();
                self.assert_same(&format!("get_after(#{k}, {limit})"), &reference, &seglog);
                // A position in the gap before the next event reads the same.
                if k < n && after + 1 < self.seg_seqs[k] {
                    let gap = self.seglog.get_after(after + 1, limit).await.unwrap();
                    self.assert_same(
                        &format!("get_after(gap after #{k}, {limit})"),
                        &reference,
                        &gap,
                    );
                }
            }
        }
        let latest = self.seglog.latest_sequence().await.unwrap();
        assert_eq!(latest, self.seg_seqs.last().copied().unwrap_or(0));
        assert!(self
            .seglog
            .get_after(latest, usize::MAX)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            self.reference.latest_sequence().await.unwrap(),
            self.ref_seqs.last().copied().unwrap_or(0)
        );
    }
}

/// The execution of the reference's first event.
async fn first_execution(reference: &InMemoryEventStore) -> ExecutionId {
    for i in 0..EXECUTIONS {
        let id = ExecutionId::from_string(format!("exec-{i}"));
        if reference
            .get_by_execution(&id)
            .await
            .unwrap()
            .iter()
            .any(|e| e.sequence == 0)
        {
            return id;
        }
    }
    panic!("no first event");
}

async fn run(seed: u64, dir: &Path) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut pair = Pair {
        reference: InMemoryEventStore::new(),
        seglog: Arc::new(SeglogStreamStore::open_with(dir, opts()).await.unwrap()),
        ref_seqs: Vec::new(),
        seg_seqs: Vec::new(),
    };
    pair.check_get_after().await; // empty
    pair.start_executions(&mut rng).await;
    for _ in 0..40 {
        match rng.random_range(0..10) {
            0..=5 => pair.append_concurrently(&mut rng).await,
            6 | 7 => pair.check_execution(rng.random_range(0..EXECUTIONS)).await,
            8 => pair.check_get_after().await,
            _ => {
                // Reopen: same answers, same numbers.
                pair.seglog.close().unwrap();
                pair.seglog = Arc::new(SeglogStreamStore::open_with(dir, opts()).await.unwrap());
            }
        }
    }
    for i in 0..EXECUTIONS {
        pair.check_execution(i).await;
    }
    pair.check_get_after().await;
    assert!(
        pair.seglog.log().segments().len() > 1,
        "the run should cross segments"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_streaming_store_agrees_with_enact_cores_in_memory_store() {
    // SEGLOG_DIFF_SEEDS=n runs more seeds; a failing seed is printed by the panic message.
    let seeds: u64 = std::env::var("SEGLOG_DIFF_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for seed in 0..seeds {
        let dir = tempfile::tempdir().unwrap();
        eprintln!("seed {seed}");
        run(seed, dir.path()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_keeps_the_tenant_of_its_first_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = SeglogStreamStore::open_with(dir.path(), opts())
        .await
        .unwrap();
    let ctx = |exec: &str, tenant: Option<&str>| {
        let mut c = ExecutionContext::new(ExecutionId::from_string(exec));
        c.tenant_id = tenant.map(TenantId::from_string);
        c
    };
    let ev = |c| ExecutionEvent::new(ExecutionEventType::StepStart, c);
    store.append(ev(ctx("a", Some("acme")))).await.unwrap();
    // Without a tenant: joins the execution's tenant, and reads give it back as it was.
    let joined = store.append(ev(ctx("a", None))).await.unwrap();
    assert_eq!(store.log().tenant_of("a").unwrap().as_deref(), Some("acme"));
    let got = store
        .get_by_execution(&ExecutionId::from_string("a"))
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    assert!(got[1].event.context.tenant_id.is_none());
    assert_eq!(got[1].sequence, joined.sequence);
    // Another tenant: refused, nothing written.
    let latest = store.latest_sequence().await.unwrap();
    let refused = store.append(ev(ctx("a", Some("bolt")))).await;
    assert!(refused.is_err());
    assert_eq!(store.latest_sequence().await.unwrap(), latest);
    assert_eq!(
        store
            .get_by_execution(&ExecutionId::from_string("a"))
            .await
            .unwrap()
            .len(),
        2
    );
    // First event without a tenant: the execution is kept under NO_TENANT.
    store.append(ev(ctx("b", None))).await.unwrap();
    assert_eq!(
        store.log().tenant_of("b").unwrap().as_deref(),
        Some(seglog_eventstore::streaming::NO_TENANT)
    );
    store.close().unwrap();
}

/// The documented rule: an execution belongs to the tenant of its first event, and a later
/// event naming another tenant is refused. An execution started without a tenant belongs to
/// none; an event naming the tenant whose id happens to be `NO_TENANT`'s spelling must not
/// join it (nor be told apart from it by nothing but a string).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_started_without_a_tenant_refuses_an_event_naming_the_tenant_no_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let store = SeglogStreamStore::open_with(dir.path(), opts())
        .await
        .unwrap();
    let ctx = |exec: &str, tenant: Option<&str>| {
        let mut c = ExecutionContext::new(ExecutionId::from_string(exec));
        c.tenant_id = tenant.map(TenantId::from_string);
        c
    };
    let ev = |c| ExecutionEvent::new(ExecutionEventType::StepStart, c);
    store.append(ev(ctx("untenanted", None))).await.unwrap();
    // Any real tenant is refused...
    assert!(store
        .append(ev(ctx("untenanted", Some("acme"))))
        .await
        .is_err());
    // ...and so must be the one spelled like the placeholder.
    let crafted = store
        .append(ev(ctx(
            "untenanted",
            Some(seglog_eventstore::streaming::NO_TENANT),
        )))
        .await;
    let events = store
        .get_by_execution(&ExecutionId::from_string("untenanted"))
        .await
        .unwrap();
    store.close().unwrap();
    assert!(
        crafted.is_err(),
        "tenant {:?} joined an execution that has no tenant: {events:?}",
        seglog_eventstore::streaming::NO_TENANT
    );
    assert_eq!(events.len(), 1);
}
