//! The processors of this crate's exporter: spans are encoded as OTLP sixteen at a time as
//! they end (`spans::EncodedSpans::hold`), each log record as it is written, into the batch
//! being filled, on the thread that ends or writes them; a sender sends the batches.
//! [`Batcher`] is that machinery, for either signal ([`Batch`]); [`OtlpSpanProcessor`] and
//! [`OtlpLogProcessor`] hand it the SDK's spans and records.
//!
//! Where the sender runs: on a service's runtime of one thread (tokio's current-thread
//! scheduler, `service_kit::runtime`) it is a task of that runtime, so that the service stays
//! one thread with tracing on, as it is without (while it resolves no host name: a lookup runs
//! on tokio's blocking pool, a thread). A process that has ever had a second thread takes
//! glibc's locked paths in `malloc` and `free` where a tcache miss takes the arena, and a batch
//! reaches tonic's connection task (on that runtime already) without crossing threads:
//! 0.4–1.8 % fewer instructions an order than with a thread of its own, the CPU an order the
//! same within the machine's noise (BENCHMARKS.md, twenty-eighth round). Elsewhere (a multi-thread
//! runtime, or none) it is a thread of its own, running a current-thread runtime of its own.
//!
//! They replace the SDK's `BatchSpanProcessor` and `BatchLogProcessor` in front of these
//! exporters. The SDK's move each `SpanData` (a few hundred bytes, and a dozen allocations of
//! its name, attributes and events), or a copy of each log record and its scope, through a
//! channel of `OTEL_BSP_MAX_QUEUE_SIZE` (`OTEL_BLRP_…`) slots, allocated whole at start, to
//! their thread, which encodes the batch there and frees every allocation. Here the encoded
//! bytes wait (with at most fifteen spans of the batch being filled not encoded yet), and the
//! allocations are freed by a thread that ends spans (with several such threads, the one that
//! ends the sixteenth; the last spans of a batch sent by the timer, by the sender). Measured
//! (BENCHMARKS.md): for spans (seventh round) 1.1–1.4 k instructions a span fewer, and 0.5–1.3
//! MiB less resident in payment- and notification-service after a sustained run; for log
//! records (fourteenth round) the copy of each record is gone.
//!
//! They keep the batch processors' settings and behaviour: at most `max_queue` items wait
//! (beyond that they are dropped and counted); a batch is sent when it holds `max_batch` items
//! or the schedule's delay has passed; only sampled spans are exported; `force_flush` and
//! `shutdown` send everything queued and wait.

use std::{
    collections::VecDeque,
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread,
    time::{Duration, Instant},
};

use opentelemetry::{Context, InstrumentationScope, context::FutureExt as _};
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    logs::{LogProcessor, SdkLogRecord},
    trace::{Span, SpanData, SpanProcessor},
};
use tokio::{runtime::RuntimeFlavor, sync::Notify};

use super::{
    Destination, LOGS_EXPORT, Request, TRACE_EXPORT, log_records::EncodedLogs, spans::EncodedSpans,
};
use crate::{
    config::{ExportSettings, TelemetryConfig},
    dropped::Throttle,
};

/// How long `force_flush` waits for the batches queued before it (the SDK's default).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// One signal's items, encoded, waiting to leave in one export request.
pub(crate) trait Batch: std::fmt::Debug + Send + 'static {
    /// What the items are called in messages: "spans", "log records".
    const ITEMS: &'static str;
    /// An empty batch whose first buffer is made with `bytes`.
    fn expecting(bytes: usize) -> Self;
    /// Items in the batch (encoded, or held to be: `spans`).
    fn len(&self) -> usize;
    /// Called once the batch holds `max_batch` items, before it waits to be sent.
    fn filled(&mut self, _limit: usize) {}
    /// Their bytes.
    fn bytes(&self) -> usize;
    /// The export request of these items; `resource` is `common::resource`'s encoding.
    fn into_request(self, resource: &[u8], schema_url: &str, limit: usize) -> Request;
    /// Reads the collector's answer: counts what a partial success refused.
    fn answered(response: bytes::Bytes);
    /// Counts `count` items lost to the failed export `error`.
    fn lost(count: usize, error: &OTelSdkError, throttle: &Throttle);
    /// Counts one item dropped because `max_queue` were already waiting.
    fn queue_full(max_queue: usize, throttle: &Throttle);
}

/// How many items wait, and for how long.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    pub(crate) max_queue: usize,
    pub(crate) max_batch: usize,
    pub(crate) delay: Duration,
}

/// Encodes items as they come and exports them in batches. See the module's documentation.
#[derive(Debug)]
pub(crate) struct Batcher<B: Batch> {
    shared: Arc<Shared<B>>,
    runs: Runs,
    value_limit: usize,
    schedule: Schedule,
    throttle: Throttle,
}

/// Where the sender runs.
#[derive(Debug)]
enum Runs {
    /// A task of the current-thread runtime that this thread drives (a one-thread service's).
    Task(thread::ThreadId),
    /// A thread of its own, until the shutdown joins it.
    Thread(Mutex<Option<thread::JoinHandle<()>>>),
}

/// A sender thread's runtime, dropped without waiting for its blocking threads: a host name's
/// lookup that outlived its connect timeout must not hold up the shutdown, and if the thread
/// cannot be started it is dropped by the caller, whose async code may not block.
struct SenderRuntime(Option<tokio::runtime::Runtime>);

impl Drop for SenderRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// What the producing threads and the sender share.
#[derive(Debug)]
struct Shared<B> {
    state: Mutex<State<B>>,
    /// Wakes the sender: a batch is full, or a flush or the shutdown is asked.
    work: Notify,
    /// Wakes those waiting for a flush or the shutdown.
    done: Condvar,
}

#[derive(Debug)]
struct State<B> {
    /// Batches in the order their items came; the last may still be filling.
    batches: VecDeque<B>,
    /// Items in `batches`.
    queued: usize,
    /// Flushes asked and done: a flush waits until `flushes_done` reaches its own number.
    flushes_asked: u64,
    flushes_done: u64,
    /// Whether every export of the last flush succeeded.
    last_flush_ok: bool,
    /// The shutdown was asked: items that come from then on are not exported.
    stopping: bool,
    /// The `Resource` message and its schema URL, given by the SDK before the first item.
    resource: Arc<(Vec<u8>, String)>,
    /// The bytes of the last full batch: what the next batch's buffer is made with.
    batch_bytes: usize,
}

impl<B> Default for State<B> {
    fn default() -> Self {
        Self {
            batches: VecDeque::new(),
            queued: 0,
            flushes_asked: 0,
            flushes_done: 0,
            last_flush_ok: false,
            stopping: false,
            resource: Arc::default(),
            batch_bytes: 0,
        }
    }
}

/// What the first batch's buffer is made with: a batch of this project's spans (300–700
/// bytes each) or log records (about 200) takes a few times that.
const FIRST_BATCH_BYTES: usize = 64 * 1024;

fn lock<B>(state: &Mutex<State<B>>) -> MutexGuard<'_, State<B>> {
    // A panic while the lock was held leaves counts at worst: the queue itself stays usable.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl<B: Batch> Batcher<B> {
    /// A batcher sending where `export` says (to `grpc_path` over gRPC), with its settings, on
    /// `schedule`, its sender started (see the module's documentation; `thread_name` if it is
    /// a thread); string values are cut to the attribute length limit.
    fn new(
        config: &TelemetryConfig,
        (grpc_path, export): (&'static str, &ExportSettings),
        schedule: Schedule,
        thread_name: &str,
    ) -> Result<Self, String> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Notify::new(),
            done: Condvar::new(),
        });
        let sender = |destination| Sender {
            shared: shared.clone(),
            destination,
            schedule,
            throttle: Throttle::default(),
        };
        // What the sender logs (a failed export) is not itself exported: its records would
        // wait behind the export that failed.
        let suppressed = Context::new().with_telemetry_suppressed();
        let current = tokio::runtime::Handle::try_current().ok();
        let runs = match current {
            Some(runtime) if runtime.runtime_flavor() == RuntimeFlavor::CurrentThread => {
                let destination = Destination::new(config, grpc_path, export)?;
                runtime.spawn(sender(destination).run().with_context(suppressed));
                Runs::Task(thread::current().id())
            }
            _ => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the {} export runtime: {e}", B::ITEMS))?;
                let runtime = SenderRuntime(Some(runtime));
                let sender = {
                    let _on_its_runtime = runtime.0.as_ref().map(|r| r.enter());
                    sender(Destination::new(config, grpc_path, export)?)
                };
                let thread = thread::Builder::new()
                    .name(thread_name.into())
                    .spawn(move || {
                        // The whole thread: tonic's and hyper's tasks on its runtime too.
                        let _suppressed = Context::enter_telemetry_suppressed_scope();
                        if let Some(on) = &runtime.0 {
                            on.block_on(sender.run().with_context(suppressed));
                        }
                    })
                    .map_err(|e| format!("cannot start the {} export thread: {e}", B::ITEMS))?;
                Runs::Thread(Mutex::new(Some(thread)))
            }
        };
        Ok(Self {
            shared,
            runs,
            value_limit: config.attribute_value_limit,
            schedule,
            throttle: Throttle::default(),
        })
    }

    /// Adds one item (`encode`, given the batch and the value limit) after the others,
    /// unless the shutdown was asked or the queue is full.
    fn push(&self, encode: impl FnOnce(&mut B, usize)) {
        let mut state = lock(&self.shared.state);
        if state.stopping {
            // As the SDK's processors: an item that comes after the shutdown is not exported.
            return;
        }
        if state.queued >= self.schedule.max_queue {
            drop(state);
            B::queue_full(self.schedule.max_queue, &self.throttle);
            return;
        }
        let State {
            batches,
            queued,
            batch_bytes,
            ..
        } = &mut *state;
        if batches
            .back()
            .is_none_or(|b| b.len() >= self.schedule.max_batch)
        {
            // A little more than the last full batch took, items vary.
            let expected = match *batch_bytes {
                0 => FIRST_BATCH_BYTES,
                last => last + last / 8,
            };
            batches.push_back(B::expecting(expected));
        }
        let mut full = false;
        if let Some(batch) = batches.back_mut() {
            encode(batch, self.value_limit);
            full = batch.len() == self.schedule.max_batch;
            if full {
                batch.filled(self.value_limit);
            }
            *queued += 1;
        }
        drop(state);
        if full {
            self.shared.work.notify_one();
        }
    }

    /// Asks the sender for a flush (`stop`: then the shutdown) and waits up to `timeout` for it.
    /// It blocks, so on the thread whose runtime the sender is a task of it only asks: waiting
    /// there would stop the very thread the sender needs (the guard flushes from a blocking
    /// thread; an SDK provider dropped there, as when `init` fails halfway, flushes here).
    fn flush(&self, stop: bool, timeout: Duration) -> OTelSdkResult {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.shared.state);
        if state.stopping {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        state.flushes_asked += 1;
        state.stopping = stop;
        let ticket = state.flushes_asked;
        self.shared.work.notify_one();
        if matches!(self.runs, Runs::Task(driver) if driver == thread::current().id()) {
            return Err(OTelSdkError::InternalFailure(format!(
                "{} flushed on the thread that sends them: asked, not waited for",
                B::ITEMS
            )));
        }
        while state.flushes_done < ticket {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(OTelSdkError::Timeout(timeout));
            }
            state = self
                .shared
                .done
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let ok = state.last_flush_ok;
        drop(state);
        if stop
            && let Runs::Thread(thread) = &self.runs
            && let Some(sender) = thread.lock().unwrap_or_else(|e| e.into_inner()).take()
        {
            let _ = sender.join();
        }
        if ok {
            Ok(())
        } else {
            Err(OTelSdkError::InternalFailure(format!(
                "some {} could not be exported",
                B::ITEMS
            )))
        }
    }

    fn set_resource(&self, resource: &Resource) {
        let encoded = super::common::resource(resource);
        let schema_url = resource.schema_url().unwrap_or_default().to_owned();
        lock(&self.shared.state).resource = Arc::new((encoded, schema_url));
    }
}

/// Encodes spans as they end, sixteen at a time, and exports them in batches (`OTEL_BSP_*`).
#[derive(Debug)]
pub(crate) struct OtlpSpanProcessor(Batcher<EncodedSpans>);

impl OtlpSpanProcessor {
    /// The processor `config` describes, its sender started.
    pub(crate) fn new(config: &TelemetryConfig) -> Result<Self, String> {
        let signal = (TRACE_EXPORT, &config.traces_export);
        let schedule = Schedule {
            max_queue: config.max_queue_size,
            // `config` keeps it within the queue, as the SDK's `BatchConfig` does.
            max_batch: config.max_export_batch_size,
            delay: config.schedule_delay,
        };
        let batcher = Batcher::new(config, signal, schedule, "otlp-span-sender")?;
        crate::dropped::register();
        Ok(Self(batcher))
    }
}

impl SpanProcessor for OtlpSpanProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.0.push(move |batch, limit| batch.hold(span, limit));
        }
        // `span` is freed once encoded (`EncodedSpans::hold`), or here if it is refused.
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.flush(false, FLUSH_TIMEOUT)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.flush(true, timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

/// Encodes log records as they are written and exports them in batches (`OTEL_BLRP_*`).
#[derive(Debug)]
pub(crate) struct OtlpLogProcessor(Batcher<EncodedLogs>);

impl OtlpLogProcessor {
    /// The processor `config` describes, its sender started.
    pub(crate) fn new(config: &TelemetryConfig) -> Result<Self, String> {
        let signal = (LOGS_EXPORT, &config.logs_export);
        let schedule = Schedule {
            max_queue: config.logs_max_queue_size,
            max_batch: config.logs_max_export_batch_size,
            delay: config.logs_schedule_delay,
        };
        Batcher::new(config, signal, schedule, "otlp-log-sender").map(Self)
    }
}

impl LogProcessor for OtlpLogProcessor {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        crate::subscriber::set_line_trace_context(record);
        self.0.push(|batch, limit| batch.push(record, scope, limit));
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.flush(false, FLUSH_TIMEOUT)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.flush(true, timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

/// What sends the batches: a task, on the service's runtime or on a thread of its own.
struct Sender<B> {
    shared: Arc<Shared<B>>,
    destination: Destination,
    schedule: Schedule,
    throttle: Throttle,
}

/// What the sender takes from the queue in one turn.
struct Turn<B> {
    batches: Vec<B>,
    resource: Arc<(Vec<u8>, String)>,
    /// The flush this turn completes, if one was asked.
    flush: Option<u64>,
    stop: bool,
}

impl<B: Batch> Sender<B> {
    async fn run(self) {
        let mut deadline = Instant::now() + self.schedule.delay;
        loop {
            let turn = self.wait(&mut deadline).await;
            let mut ok = true;
            for batch in turn.batches {
                ok &= self.export(batch, &turn.resource).await;
            }
            if let Some(ticket) = turn.flush {
                let mut state = lock(&self.shared.state);
                state.flushes_done = ticket;
                state.last_flush_ok = ok;
                self.shared.done.notify_all();
            }
            if turn.stop {
                return;
            }
        }
    }

    /// Waits until a batch is full, the delay has passed, or a flush is asked, and takes the
    /// batches to send: the full ones, or all of them when the delay has passed or on a flush.
    async fn wait(&self, deadline: &mut Instant) -> Turn<B> {
        loop {
            if let Some(turn) = self.take(deadline) {
                return turn;
            }
            // A wake-up that came since `take` let the lock go is kept by `Notify` as a permit.
            let woken = self.shared.work.notified();
            let _ = tokio::time::timeout_at((*deadline).into(), woken).await;
        }
    }

    /// The batches to send now, if any are due (see [`Self::wait`]).
    fn take(&self, deadline: &mut Instant) -> Option<Turn<B>> {
        let max_batch = self.schedule.max_batch;
        let mut state = lock(&self.shared.state);
        let now = Instant::now();
        let flush = state.flushes_asked > state.flushes_done;
        let due = now >= *deadline;
        let full = state.batches.front().is_some_and(|b| b.len() >= max_batch);
        if !(flush || due || full) {
            return None;
        }
        if due {
            *deadline = now + self.schedule.delay;
        }
        let take = if flush || due {
            state.batches.len()
        } else {
            state
                .batches
                .iter()
                .take_while(|b| b.len() >= max_batch)
                .count()
        };
        let batches: Vec<B> = state.batches.drain(..take).collect();
        if let Some(full) = batches.iter().rev().find(|b| b.len() >= max_batch) {
            state.batch_bytes = full.bytes();
        }
        state.queued -= batches.iter().map(B::len).sum::<usize>();
        Some(Turn {
            batches,
            resource: state.resource.clone(),
            flush: flush.then_some(state.flushes_asked),
            stop: flush && state.stopping,
        })
    }

    /// Sends one batch; false if its items were lost (and counted).
    async fn export(&self, batch: B, resource: &(Vec<u8>, String)) -> bool {
        let to = &self.destination;
        let count = batch.len();
        let request = batch.into_request(&resource.0, &resource.1, to.value_limit);
        match to.send(request).await {
            Ok(response) => {
                // A collector may accept a batch and still refuse some of its items.
                B::answered(response);
                true
            }
            Err(error) => {
                B::lost(count, &error, &self.throttle);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, Mutex},
        time::Duration,
    };

    use axum::{Router, body::Bytes, extract::State, routing::post};
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_proto::tonic::collector::{
        logs::v1::ExportLogsServiceRequest, trace::v1::ExportTraceServiceRequest,
    };
    use opentelemetry_sdk::logs::SdkLoggerProvider;
    use opentelemetry_sdk::{error::OTelSdkError, trace::SdkTracerProvider};
    use prost::Message as _;
    use tokio::sync::Semaphore;

    use super::{OtlpLogProcessor, OtlpSpanProcessor};
    use crate::{ServiceInfo, TelemetryConfig};

    /// An OTLP/HTTP collector that keeps the span count of each request it answers, and
    /// answers only while it holds permits (`stall`: none until the test adds them).
    #[derive(Clone)]
    struct Collector {
        requests: Arc<Mutex<Vec<usize>>>,
        permits: Arc<Semaphore>,
    }

    impl Collector {
        fn requests(&self) -> Vec<usize> {
            self.requests
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        }

        /// Answers a request of `items` once a permit allows, and keeps its count.
        async fn answer(&self, items: usize) -> Vec<u8> {
            if let Ok(permit) = self.permits.acquire().await {
                permit.forget();
            }
            self.requests
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(items);
            Vec::new()
        }

        /// Waits up to 5 s for `expected` requests; returns what arrived.
        async fn wait_for(&self, expected: usize) -> Vec<usize> {
            for _ in 0..500 {
                if self.requests().len() >= expected {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            self.requests()
        }
    }

    async fn receive(State(collector): State<Collector>, body: Bytes) -> Vec<u8> {
        let request = ExportTraceServiceRequest::decode(body).expect("an OTLP request");
        let resources = request.resource_spans.iter();
        let spans = resources
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len());
        collector.answer(spans.sum()).await
    }

    async fn receive_logs(State(collector): State<Collector>, body: Bytes) -> Vec<u8> {
        let request = ExportLogsServiceRequest::decode(body).expect("an OTLP request");
        let resources = request.resource_logs.iter();
        let records = resources
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len());
        collector.answer(records.sum()).await
    }

    /// A collector on 127.0.0.1 answering `permits` requests at once, and a provider exporting
    /// to it through [`OtlpSpanProcessor`] with the batch settings `vars`.
    async fn exporting(vars: &[(&str, &str)], permits: usize) -> (Collector, SdkTracerProvider) {
        let (collector, config) = collector(vars, permits).await;
        let processor = OtlpSpanProcessor::new(&config).expect("a processor");
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .build();
        (collector, provider)
    }

    /// The collector of [`exporting`], and the settings that export to it.
    async fn collector(vars: &[(&str, &str)], permits: usize) -> (Collector, TelemetryConfig) {
        let collector = Collector {
            requests: Arc::default(),
            permits: Arc::new(Semaphore::new(permits)),
        };
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .route("/v1/logs", post(receive_logs))
            .with_state(collector.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain([
                ("OTEL_EXPORTER_OTLP_PROTOCOL".into(), "http/protobuf".into()),
                ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint),
            ])
            .collect();
        let config = TelemetryConfig::from_lookup(
            &ServiceInfo {
                name: "processor-test",
                version: "0.0.0",
            },
            |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
        )
        .expect("valid config");
        (collector, config)
    }

    fn end_spans(provider: &SdkTracerProvider, count: usize) {
        let tracer = provider.tracer("processor-test");
        for i in 0..count {
            tracer.start(format!("span {i}")).end();
        }
    }

    /// The provider's flush or shutdown, off the runtime's threads (it blocks).
    async fn blocking<T: Send + 'static>(
        provider: &SdkTracerProvider,
        call: impl FnOnce(&SdkTracerProvider) -> T + Send + 'static,
    ) -> T {
        let provider = provider.clone();
        tokio::task::spawn_blocking(move || call(&provider))
            .await
            .expect("the flush thread")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_batch_is_sent_at_once_and_the_rest_waits_for_the_schedule() {
        full_batches_leave_at_once_and_the_rest_waits().await;
    }

    /// On a runtime of one thread the sender is a task of it, as in a service.
    #[tokio::test(flavor = "current_thread")]
    async fn a_full_batch_is_sent_at_once_by_a_task_of_a_one_thread_runtime() {
        full_batches_leave_at_once_and_the_rest_waits().await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_flush_on_the_thread_that_sends_is_asked_and_not_waited_for() {
        let (collector, provider) =
            exporting(&[("OTEL_BSP_SCHEDULE_DELAY", "600000")], usize::MAX >> 4).await;
        end_spans(&provider, 3);
        let started = std::time::Instant::now();
        let flushed = provider.force_flush();
        assert!(flushed.is_err(), "{flushed:?}");
        // Waiting would have taken the flush's whole timeout (5 s): the sender needs this thread.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            collector.wait_for(1).await,
            vec![3],
            "the flush asked is sent"
        );
        blocking(&provider, |p| p.shutdown())
            .await
            .expect("the shutdown succeeds");
    }

    /// Nine spans in batches of four: two batches leave at once, the ninth at the flush.
    async fn full_batches_leave_at_once_and_the_rest_waits() {
        let (collector, provider) = exporting(
            &[
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4"),
                ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
            ],
            usize::MAX >> 4,
        )
        .await;
        end_spans(&provider, 9);
        assert_eq!(collector.wait_for(2).await, vec![4, 4]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(collector.requests(), vec![4, 4], "the ninth span waits");
        blocking(&provider, |p| p.force_flush())
            .await
            .expect("the flush succeeds");
        assert_eq!(collector.requests(), vec![4, 4, 1]);
        blocking(&provider, |p| p.shutdown())
            .await
            .expect("the shutdown succeeds");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spans_beyond_the_queue_are_dropped_while_the_collector_stalls() {
        let (collector, provider) = exporting(
            &[
                ("OTEL_BSP_MAX_QUEUE_SIZE", "4"),
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2"),
                ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
            ],
            0,
        )
        .await;
        // Two spans leave in the first request, which the collector holds; four more fill
        // the queue; the last three have no room.
        end_spans(&provider, 2);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let dropped_before = crate::dropped::lost_so_far();
        end_spans(&provider, 7);
        let dropped = crate::dropped::lost_so_far() - dropped_before;
        assert!(dropped >= 3, "{dropped} spans counted as dropped");
        collector.permits.add_permits(usize::MAX >> 4);
        blocking(&provider, |p| p.shutdown())
            .await
            .expect("the shutdown succeeds");
        assert_eq!(collector.requests(), vec![2, 2, 2]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_sends_what_is_queued_and_then_nothing_more() {
        let (collector, provider) = exporting(&[], usize::MAX >> 4).await;
        end_spans(&provider, 3);
        blocking(&provider, |p| p.shutdown())
            .await
            .expect("the shutdown succeeds");
        assert_eq!(collector.requests(), vec![3]);
        let again = blocking(&provider, |p| p.shutdown()).await;
        assert!(
            matches!(again, Err(OTelSdkError::AlreadyShutdown)),
            "{again:?}"
        );
    }

    /// `otel_sdk_logs_dropped_total{reason="queue_full"}`, as `/metrics` shows it.
    fn log_records_dropped_for_a_full_queue() -> f64 {
        crate::metrics::render()
            .lines()
            .find_map(|l| l.strip_prefix("otel_sdk_logs_dropped_total{reason=\"queue_full\"} "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0.0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn log_records_leave_in_batches_and_beyond_their_queue_are_dropped_and_counted() {
        let (collector, config) = collector(
            &[
                ("OTEL_BLRP_MAX_QUEUE_SIZE", "4"),
                ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "2"),
                ("OTEL_BLRP_SCHEDULE_DELAY", "600000"),
            ],
            0,
        )
        .await;
        crate::logs::count_lost(0, "queue_full");
        let provider = SdkLoggerProvider::builder()
            .with_log_processor(OtlpLogProcessor::new(&config).expect("a processor"))
            .build();
        let logger = provider.logger("processor-test");
        let write = |count: usize| {
            for i in 0..count {
                let mut record = logger.create_log_record();
                record.set_body(format!("line {i}").into());
                logger.emit(record);
            }
        };
        // Two records leave in the first request, which the collector holds; four more fill
        // the queue; the last three have no room.
        write(2);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let dropped_before = log_records_dropped_for_a_full_queue();
        write(7);
        let dropped = log_records_dropped_for_a_full_queue() - dropped_before;
        assert_eq!(dropped, 3.0, "records counted as dropped");
        collector.permits.add_permits(usize::MAX >> 4);
        let shutdown = provider.clone();
        tokio::task::spawn_blocking(move || shutdown.shutdown())
            .await
            .expect("the shutdown thread")
            .expect("the shutdown succeeds");
        assert_eq!(collector.requests(), vec![2, 2, 2]);
    }
}
