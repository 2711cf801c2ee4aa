//! An object store that fails on purpose: wraps another store (the in-memory one in tests)
//! and numbers every operation; the operation armed with [`FaultStore::arm`] fails, either
//! before it reaches the store or after it was applied ("timeout after success"), and with
//! `crash` every later operation fails too (the node is gone).

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How the armed operation fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The operation is not applied; an error is returned.
    Before,
    /// The operation is applied, then an error is returned (a timeout after success).
    AfterSuccess,
}

#[derive(Debug, Clone, Copy)]
struct Armed {
    at_op: u64,
    fault: Fault,
    crash: bool,
}

/// Per-operation counters.
#[derive(Debug, Default)]
pub struct OpCounts {
    pub puts: AtomicU64,
    pub gets: AtomicU64,
    pub lists: AtomicU64,
    pub deletes: AtomicU64,
}

/// The fault-injecting store.
#[derive(Debug)]
pub struct FaultStore {
    inner: Arc<dyn ObjectStore>,
    ops: AtomicU64,
    armed: Mutex<Option<Armed>>,
    /// Held at the next listing of a `segments/` folder.
    segment_list_gate: Mutex<Option<Gate>>,
    /// Each held at the next PUT of a key containing its fragment (in order of arming).
    put_gates: Mutex<Vec<(String, Gate)>>,
    /// Each held at the next GET of a key containing its fragment (review 14).
    get_gates: Mutex<Vec<(String, Gate)>>,
    pub counts: OpCounts,
    /// PUTs of keys containing the fragment take this long (before reaching the store).
    put_delay: Mutex<Option<(String, std::time::Duration)>>,
    /// PUTs of keys containing the fragment in flight now, and the most seen at once.
    pub delayed_in_flight: AtomicU64,
    pub delayed_max_in_flight: AtomicU64,
    /// GETs of keys containing the fragment take this long (before reaching the store).
    get_delay: Mutex<Option<(String, std::time::Duration)>>,
    /// GETs of keys containing the fragment in flight now, and the most seen at once.
    pub delayed_gets_in_flight: AtomicU64,
    pub delayed_gets_max_in_flight: AtomicU64,
    /// Each: the `n`-th later PUT of a key containing the fragment fails (remote durability).
    put_faults: Mutex<Vec<PutFault>>,
    /// Each: the `n`-th later GET of a key containing the fragment fails (before the store).
    get_faults: Mutex<Vec<PutFault>>,
    /// Every GET: its key and the range asked (`None`: the whole object).
    pub get_log: Mutex<Vec<(String, Option<object_store::GetRange>)>>,
}

#[derive(Debug)]
struct PutFault {
    fragment: String,
    remaining: u64,
    fault: Fault,
}

/// A pause point: the store signals `reached`, then waits for `resume`.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    pub reached: Arc<tokio::sync::Notify>,
    pub resume: Arc<tokio::sync::Notify>,
}

enum Decision {
    Run,
    FailBefore,
    FailAfter,
}

impl FaultStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Arc<Self> {
        Arc::new(FaultStore {
            inner,
            ops: AtomicU64::new(0),
            armed: Mutex::new(None),
            segment_list_gate: Mutex::new(None),
            put_gates: Mutex::new(Vec::new()),
            get_gates: Mutex::new(Vec::new()),
            counts: OpCounts::default(),
            put_delay: Mutex::new(None),
            delayed_in_flight: AtomicU64::new(0),
            delayed_max_in_flight: AtomicU64::new(0),
            get_delay: Mutex::new(None),
            delayed_gets_in_flight: AtomicU64::new(0),
            delayed_gets_max_in_flight: AtomicU64::new(0),
            put_faults: Mutex::new(Vec::new()),
            get_faults: Mutex::new(Vec::new()),
            get_log: Mutex::new(Vec::new()),
        })
    }

    /// Operations so far.
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    /// The `n`-th operation from now (1 = the next) fails with `fault`; with `crash`, every
    /// later one fails too (before reaching the store).
    pub fn arm(&self, n: u64, fault: Fault, crash: bool) {
        *self.armed.lock().unwrap() = Some(Armed {
            at_op: self.ops() + n,
            fault,
            crash,
        });
    }

    /// The next listing of a `segments/` folder pauses until `gate.resume` is notified.
    pub fn pause_next_segment_list(&self) -> Gate {
        let gate = Gate::default();
        *self.segment_list_gate.lock().unwrap() = Some(gate.clone());
        gate
    }

    /// The next PUT of a key containing `fragment` pauses (before reaching the store) until
    /// `gate.resume` is notified.
    pub fn pause_next_put(&self, fragment: &str) -> Gate {
        let gate = Gate::default();
        self.put_gates
            .lock()
            .unwrap()
            .push((fragment.to_owned(), gate.clone()));
        gate
    }

    /// The next GET of a key containing `fragment` pauses (before reaching the store) until
    /// `gate.resume` is notified.
    pub fn pause_next_get(&self, fragment: &str) -> Gate {
        let gate = Gate::default();
        self.get_gates
            .lock()
            .unwrap()
            .push((fragment.to_owned(), gate.clone()));
        gate
    }

    /// Every later PUT of a key containing `fragment` waits `delay` first (a slow store),
    /// and the most of them in flight at once is kept in `delayed_max_in_flight`.
    pub fn delay_puts(&self, fragment: &str, delay: std::time::Duration) {
        *self.put_delay.lock().unwrap() = Some((fragment.to_owned(), delay));
    }

    /// Every later GET of a key containing `fragment` waits `delay` first (a store with a
    /// first-byte latency), and the most of them in flight at once is kept in
    /// `delayed_gets_max_in_flight`.
    pub fn delay_gets(&self, fragment: &str, delay: std::time::Duration) {
        *self.get_delay.lock().unwrap() = Some((fragment.to_owned(), delay));
    }

    /// The `n`-th later PUT (1 = the next) of a key containing `fragment` fails with
    /// `fault` (the other operations are not affected).
    pub fn fail_put(&self, fragment: &str, n: u64, fault: Fault) {
        self.put_faults.lock().unwrap().push(PutFault {
            fragment: fragment.to_owned(),
            remaining: n,
            fault,
        });
    }

    /// The `n`-th later GET (1 = the next) of a key containing `fragment` fails before it
    /// reaches the store (the other operations are not affected).
    pub fn fail_get(&self, fragment: &str, n: u64) {
        self.get_faults.lock().unwrap().push(PutFault {
            fragment: fragment.to_owned(),
            remaining: n,
            fault: Fault::Before,
        });
    }

    /// The fault of a PUT of `location`, if one is armed for it now.
    fn put_fault(&self, location: &Path) -> Option<Fault> {
        Self::take_fault(&self.put_faults, location)
    }

    /// The first fault of `faults` that `location` brings to its turn, if any.
    fn take_fault(faults: &Mutex<Vec<PutFault>>, location: &Path) -> Option<Fault> {
        let mut faults = faults.lock().unwrap();
        let mut hit = None;
        faults.retain_mut(|f| {
            if !location.as_ref().contains(f.fragment.as_str()) {
                return true;
            }
            f.remaining -= 1;
            if f.remaining == 0 {
                hit = Some(f.fault);
                return false;
            }
            true
        });
        hit
    }

    pub fn disarm(&self) {
        *self.armed.lock().unwrap() = None;
    }

    fn decide(&self) -> Decision {
        let op = self.ops.fetch_add(1, Ordering::SeqCst) + 1;
        match *self.armed.lock().unwrap() {
            Some(a) if op == a.at_op => match a.fault {
                Fault::Before => Decision::FailBefore,
                Fault::AfterSuccess => Decision::FailAfter,
            },
            Some(a) if a.crash && op > a.at_op => Decision::FailBefore,
            _ => Decision::Run,
        }
    }
}

fn injected() -> object_store::Error {
    object_store::Error::Generic {
        store: "FaultStore",
        source: "injected fault".into(),
    }
}

impl std::fmt::Display for FaultStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaultStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.counts.puts.fetch_add(1, Ordering::SeqCst);
        let gate = {
            let mut gates = self.put_gates.lock().unwrap();
            let at = gates
                .iter()
                .position(|(f, _)| location.as_ref().contains(f.as_str()));
            at.map(|i| gates.remove(i).1)
        };
        if let Some(gate) = gate {
            gate.reached.notify_one();
            gate.resume.notified().await;
        }
        let delay = self
            .put_delay
            .lock()
            .unwrap()
            .clone()
            .filter(|(f, _)| location.as_ref().contains(f.as_str()));
        if let Some((_, delay)) = delay {
            let now = self.delayed_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.delayed_max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            self.delayed_in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        match self.put_fault(location) {
            Some(Fault::Before) => return Err(injected()),
            Some(Fault::AfterSuccess) => {
                self.inner.put_opts(location, payload, opts).await?;
                return Err(injected());
            }
            None => {}
        }
        match self.decide() {
            Decision::Run => self.inner.put_opts(location, payload, opts).await,
            Decision::FailBefore => Err(injected()),
            Decision::FailAfter => {
                self.inner.put_opts(location, payload, opts).await?;
                Err(injected())
            }
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        match self.decide() {
            Decision::Run => self.inner.put_multipart_opts(location, opts).await,
            _ => Err(injected()),
        }
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.counts.gets.fetch_add(1, Ordering::SeqCst);
        self.get_log
            .lock()
            .unwrap()
            .push((location.to_string(), options.range.clone()));
        let gate = {
            let mut gates = self.get_gates.lock().unwrap();
            let at = gates
                .iter()
                .position(|(f, _)| location.as_ref().contains(f.as_str()));
            at.map(|i| gates.remove(i).1)
        };
        if let Some(gate) = gate {
            gate.reached.notify_one();
            gate.resume.notified().await;
        }
        let delay = self
            .get_delay
            .lock()
            .unwrap()
            .clone()
            .filter(|(f, _)| location.as_ref().contains(f.as_str()));
        if let Some((_, delay)) = delay {
            let now = self.delayed_gets_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.delayed_gets_max_in_flight
                .fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            self.delayed_gets_in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        if Self::take_fault(&self.get_faults, location).is_some() {
            return Err(injected());
        }
        match self.decide() {
            Decision::Run => self.inner.get_opts(location, options).await,
            _ => Err(injected()),
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.counts.deletes.fetch_add(1, Ordering::SeqCst);
        match self.decide() {
            Decision::Run => self.inner.delete_stream(locations),
            Decision::FailBefore => futures_util::stream::once(async { Err(injected()) }).boxed(),
            Decision::FailAfter => {
                let inner = self.inner.delete_stream(locations);
                inner.map(|r| r.and(Err(injected()))).boxed()
            }
        }
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.counts.lists.fetch_add(1, Ordering::SeqCst);
        if prefix.is_some_and(|p| p.as_ref().ends_with("/segments")) {
            if let Some(gate) = self.segment_list_gate.lock().unwrap().take() {
                let inner = self.inner.clone();
                let prefix = prefix.cloned();
                return futures_util::stream::once(async move {
                    gate.reached.notify_one();
                    gate.resume.notified().await;
                    inner.list(prefix.as_ref())
                })
                .flatten()
                .boxed();
            }
        }
        match self.decide() {
            Decision::Run => self.inner.list(prefix),
            _ => futures_util::stream::once(async { Err(injected()) }).boxed(),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.counts.lists.fetch_add(1, Ordering::SeqCst);
        match self.decide() {
            Decision::Run => self.inner.list_with_delimiter(prefix).await,
            _ => Err(injected()),
        }
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        match self.decide() {
            Decision::Run => self.inner.copy_opts(from, to, options).await,
            _ => Err(injected()),
        }
    }
}
