//! The recorder (docs/interceptor.md "Writing records"): exchanges are handed over a bounded channel to one task
//! that writes them in batches, many records per transaction; decoding, redaction and sealing happen on a
//! thread beside the runtime. A record is acknowledged (the response's last bytes reach the client) only once
//! it is durable: committed to the database, or — while the database refuses — written to the spool, from
//! which the replayer moves it to the database later. Batches form by themselves (group commit): whatever
//! queued while one batch was being written is the next batch, so waiting adds no linger at low rates and
//! large transactions at high ones. A full channel makes the proxy wait; nothing is dropped silently;
//! shutdown drains the channel.

use super::capture::{Capture, Ending};
use super::decode;
use super::in_flight::InFlight;
use super::spool::Spool;
use crate::records::{Record, RecordKey, SealedRecord};
use crate::rules::{LiveRules, Rules};
use crate::store::{DatabaseHealth, Store};
use crate::timestamp::Timestamp;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::PollSender;

/// Most records per transaction.
const BATCH: usize = 512;
/// How often the replayer looks at the spool while it holds batches.
const REPLAY_EVERY: Duration = Duration::from_secs(1);
/// How long a batch may take to commit before it is spooled instead: a database that hangs (a lock, a lost
/// network) must not hold every acknowledgement. A batch that commits after all is harmless: the replay of
/// its spooled copy inserts nothing twice.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a record stands once the recorder is done with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durable {
    /// In the database.
    Committed,
    /// In the spool on local disk; the replayer writes it to the database when it answers.
    Spooled,
    /// Neither: the exchange must not be acknowledged.
    Failed,
}

/// One record and whoever waits for it to be durable.
struct Entry {
    record: Record,
    durable: Option<oneshot::Sender<Durable>>,
    queued_at: std::time::Instant,
}

impl Entry {
    /// An entry whose exchange waits for the recorder's word, and the receiving end of that word.
    fn awaited(record: Record) -> (Entry, oneshot::Receiver<Durable>) {
        let (done, durable) = oneshot::channel();
        let mut entry = Entry::unawaited(record);
        entry.durable = Some(done);
        (entry, durable)
    }

    /// An entry nobody waits for (its client is gone or the body failed).
    fn unawaited(record: Record) -> Entry {
        Entry {
            record,
            durable: None,
            queued_at: std::time::Instant::now(),
        }
    }
}

#[derive(Clone)]
pub struct Recorder {
    sender: mpsc::Sender<Entry>,
    stats: Arc<RecorderStats>,
}

/// Counters for `/metrics`: records handed to the recorder, committed to the database, spooled, and given
/// up on; how long acknowledged records waited to be durable; the age of the oldest record not yet in the
/// database.
#[derive(Debug, Default)]
pub struct RecorderStats {
    queued: AtomicU64,
    written: AtomicU64,
    spooled: AtomicU64,
    /// Spooled records the replayer has since written to the database.
    replayed: AtomicU64,
    lost: AtomicU64,
    /// Microseconds from hand-over to durable, summed over `durable_count` records.
    durable_micros: AtomicU64,
    durable_count: AtomicU64,
    /// When the oldest record not yet in the database was handed over (µs since the epoch; 0: none).
    lagging_since: AtomicU64,
    /// This process spooled records the replayer has not yet seen into the database.
    spool_waiting: AtomicBool,
}

/// Records handed to the recorder, and what became of them: committed to the database, spooled to disk (and
/// later replayed to the database), or lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordCounts {
    pub queued: u64,
    pub written: u64,
    pub spooled: u64,
    pub replayed: u64,
    pub lost: u64,
}

impl RecordCounts {
    /// Records in flight or waiting for an outcome.
    pub fn depth(&self) -> u64 {
        self.queued
            .saturating_sub(self.written + self.spooled + self.lost)
    }
}

impl RecorderStats {
    fn queued(&self) {
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters so far.
    pub fn counts(&self) -> RecordCounts {
        // Outcomes first: a record is queued before it has one, so the queue depth never goes negative.
        let (written, spooled, lost) = (
            self.written.load(Ordering::Relaxed),
            self.spooled.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed),
        );
        RecordCounts {
            queued: self.queued.load(Ordering::Relaxed),
            written,
            spooled,
            replayed: self.replayed.load(Ordering::Relaxed),
            lost,
        }
    }

    /// (seconds summed, records) of the wait from hand-over to durable.
    pub fn durable_wait(&self) -> (f64, u64) {
        (
            self.durable_micros.load(Ordering::Relaxed) as f64 / 1e6,
            self.durable_count.load(Ordering::Relaxed),
        )
    }

    /// Seconds the oldest record not yet in the database has waited (0 when every record is in).
    pub fn lag_seconds(&self) -> f64 {
        match self.lagging_since.load(Ordering::Relaxed) {
            0 => 0.0,
            since => (Timestamp::now().micros() as u64).saturating_sub(since) as f64 / 1e6,
        }
    }

    fn lagging_from(&self, since: Timestamp) {
        let _ = self.lagging_since.compare_exchange(
            0,
            since.micros().max(1) as u64,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    fn caught_up(&self) {
        self.lagging_since.store(0, Ordering::Relaxed);
    }
}

impl Recorder {
    /// Starts the recorder task with room for `queue` records, spooling to `spool` while the database
    /// refuses (without one, such records fail); it ends once every `Recorder` clone is dropped and the
    /// queue is written. A replayer task moves spooled batches (this process's or a crashed one's) to the
    /// database.
    pub fn spawn(
        store: Arc<dyn Store>,
        key: Arc<RecordKey>,
        rules: Arc<LiveRules>,
        body_limit: u64,
        queue: usize,
        spool: Option<Spool>,
        database: Arc<DatabaseHealth>,
    ) -> (Recorder, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(queue.max(1));
        let stats = Arc::new(RecorderStats::default());
        let replayer = spool
            .clone()
            .map(|spool| tokio::spawn(replay_spool(spool, store.clone(), stats.clone())));
        let writer = tokio::spawn(write_batches(
            receiver,
            Writer {
                store,
                key,
                rules,
                body_limit,
                stats: stats.clone(),
                spool,
                database,
            },
        ));
        let task = tokio::spawn(async move {
            let _ = writer.await;
            if let Some(replayer) = replayer {
                replayer.abort();
            }
        });
        (Recorder { sender, stats }, task)
    }

    pub fn stats(&self) -> Arc<RecorderStats> {
        self.stats.clone()
    }

    /// Queues a record (waiting while the queue is full) and waits until it is durable.
    pub async fn record(&self, record: Record) -> Durable {
        self.stats.queued();
        let (entry, durable) = Entry::awaited(record);
        if self.sender.send(entry).await.is_err() {
            self.stats.lost.fetch_add(1, Ordering::Relaxed);
            tracing::error!("recorder stopped; a record could not be queued");
            return Durable::Failed;
        }
        durable.await.unwrap_or(Durable::Failed)
    }

    /// A record whose response is still streaming.
    pub fn pending(&self, exchange: InFlight) -> Pending {
        self.stats.queued();
        Pending {
            exchange: Some(exchange),
            sender: PollSender::new(self.sender.clone()),
            stats: self.stats.clone(),
            durable: None,
        }
    }
}

/// The record of an exchange in flight, finished by the response body.
pub struct Pending {
    exchange: Option<InFlight>,
    sender: PollSender<Entry>,
    /// Counts the record as queued from the start, so a record still streaming shows in the queue depth.
    stats: Arc<RecorderStats>,
    /// Once handed over: the recorder's word that the record is durable.
    durable: Option<oneshot::Receiver<Durable>>,
}

impl Pending {
    /// The response body ended: see [`InFlight::ended`].
    pub fn finish_response(
        &mut self,
        response: Capture,
        ending: Ending,
        upstream_error: Option<String>,
    ) {
        if let Some(exchange) = self.exchange.as_mut() {
            exchange.ended(response, ending, upstream_error);
        }
    }

    /// Marks the exchange aborted: the client left before it had the whole response.
    pub fn client_gone(&mut self) {
        if let Some(exchange) = self.exchange.as_mut() {
            exchange.client_gone();
        }
    }

    /// Queues the record (waiting for room) and then waits until it is durable: the exchange is
    /// acknowledged only after this is ready with anything but `Failed`.
    pub fn poll_durable(&mut self, cx: &mut Context<'_>) -> Poll<Durable> {
        if let Some(durable) = self.durable.as_mut() {
            return Pin::new(durable)
                .poll(cx)
                .map(|durable| durable.unwrap_or(Durable::Failed));
        }
        if self.exchange.is_none() {
            return Poll::Ready(Durable::Failed);
        }
        match self.sender.poll_reserve(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => {
                let Some(exchange) = self.exchange.take() else {
                    return Poll::Ready(Durable::Failed);
                };
                let (entry, durable) = Entry::awaited(exchange.into_record());
                if self.sender.send_item(entry).is_err() {
                    self.stats.lost.fetch_add(1, Ordering::Relaxed);
                    tracing::error!("recorder stopped; a record was lost");
                    return Poll::Ready(Durable::Failed);
                }
                self.durable = Some(durable);
                self.poll_durable(cx)
            }
            Poll::Ready(Err(_)) => {
                self.stats.lost.fetch_add(1, Ordering::Relaxed);
                tracing::error!("recorder stopped; a record was lost");
                self.exchange = None;
                Poll::Ready(Durable::Failed)
            }
        }
    }

    /// Queues the record without a task to wait in (the body was dropped): at once when there is room, else
    /// from a task of its own.
    pub fn hand_over_now(mut self) {
        let Some(exchange) = self.exchange.take() else {
            return;
        };
        let record = Entry::unawaited(exchange.into_record());
        let stats = self.stats.clone();
        let Some(sender) = self.sender.get_ref().cloned() else {
            stats.lost.fetch_add(1, Ordering::Relaxed);
            tracing::error!(record_id = %record.record.id, "recorder stopped; a record was lost");
            return;
        };
        match sender.try_send(record) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(record)) => {
                tokio::spawn(async move {
                    let id = record.record.id;
                    if sender.send(record).await.is_err() {
                        stats.lost.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(record_id = %id, "recorder stopped; a record was lost");
                    }
                });
            }
            Err(mpsc::error::TrySendError::Closed(record)) => {
                stats.lost.fetch_add(1, Ordering::Relaxed);
                tracing::error!(record_id = %record.record.id, "recorder stopped; a record was lost");
            }
        }
    }
}

/// The stored copy of a content-encoded response body, decoded; the headers keep saying how it travelled. A body
/// that does not decode (cut by the body limit, or malformed) is kept as received.
fn decode_response(record: &mut Record, limit: u64) {
    let Some(encoding) = record
        .response_headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case("content-encoding"))
        .map(|header| header.value.clone())
    else {
        return;
    };
    match decode::decode(&encoding, &record.response_body, limit) {
        Ok(Some(decoded)) => {
            record.response_body = decoded.bytes;
            record.response_truncated |= decoded.truncated;
        }
        Ok(None) => {}
        Err(error) => {
            tracing::debug!(record_id = %record.id, %error, "response body kept as received");
        }
    }
}

/// What is stored of each exchange: the response body decoded, secrets redacted, the whole sealed.
fn seal_batch(
    records: Vec<Record>,
    rules: &Rules,
    key: &RecordKey,
    body_limit: u64,
) -> Vec<SealedRecord> {
    records
        .into_iter()
        .map(|mut record| {
            decode_response(&mut record, body_limit);
            record.redact(&rules.redaction);
            key.seal(record)
        })
        .collect()
}

/// Decodes, redacts and seals batches on a thread of its own, off the runtime's workers. It runs at normal
/// priority: responses now wait for their records (a lower priority, fine while recording was background
/// work, would hold every response back on a busy core).
struct Sealer {
    jobs: std::sync::mpsc::Sender<SealJob>,
}

struct SealJob {
    records: Vec<Record>,
    rules: Arc<Rules>,
    done: oneshot::Sender<Vec<SealedRecord>>,
}

impl Sealer {
    fn start(key: Arc<RecordKey>, body_limit: u64) -> std::io::Result<Sealer> {
        let (jobs, queue) = std::sync::mpsc::channel::<SealJob>();
        std::thread::Builder::new()
            .name("record-sealer".into())
            .spawn(move || {
                for job in queue {
                    let sealed = seal_batch(job.records, &job.rules, &key, body_limit);
                    let _ = job.done.send(sealed);
                }
            })?;
        Ok(Sealer { jobs })
    }

    async fn seal(&self, records: Vec<Record>, rules: Arc<Rules>) -> Option<Vec<SealedRecord>> {
        let (done, sealed) = oneshot::channel();
        self.jobs
            .send(SealJob {
                records,
                rules,
                done,
            })
            .ok()?;
        sealed.await.ok()
    }
}

/// What the writing task needs.
struct Writer {
    store: Arc<dyn Store>,
    key: Arc<RecordKey>,
    rules: Arc<LiveRules>,
    body_limit: u64,
    stats: Arc<RecorderStats>,
    spool: Option<Spool>,
    database: Arc<DatabaseHealth>,
}

async fn write_batches(mut receiver: mpsc::Receiver<Entry>, writer: Writer) {
    let sealer = match Sealer::start(writer.key.clone(), writer.body_limit) {
        Ok(sealer) => Some(sealer),
        Err(error) => {
            tracing::warn!(%error, "no sealer thread; sealing on the runtime");
            None
        }
    };
    let stats = &writer.stats;
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        let entries = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
        if let Some(first) = entries.first() {
            stats.lagging_from(first.record.timings.started_at);
        }
        let mut waiting = Vec::with_capacity(entries.len());
        let mut records = Vec::with_capacity(entries.len());
        for entry in entries {
            waiting.push((entry.durable, entry.queued_at));
            records.push(entry.record);
        }
        let rules = writer.rules.current();
        let sealed = match &sealer {
            Some(sealer) => sealer.seal(records, rules).await,
            None => Some(seal_batch(records, &rules, &writer.key, writer.body_limit)),
        };
        let durable = match sealed {
            Some(sealed) => store_batch(&writer, &sealed).await,
            None => {
                tracing::error!("the record sealer stopped; a batch of records is lost");
                Durable::Failed
            }
        };
        let counter = match durable {
            Durable::Committed => &stats.written,
            Durable::Spooled => &stats.spooled,
            Durable::Failed => &stats.lost,
        };
        counter.fetch_add(waiting.len() as u64, Ordering::Relaxed);
        for (done, queued_at) in waiting {
            if durable != Durable::Failed {
                stats
                    .durable_micros
                    .fetch_add(queued_at.elapsed().as_micros() as u64, Ordering::Relaxed);
                stats.durable_count.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(done) = done {
                let _ = done.send(durable);
            }
        }
        match durable {
            Durable::Spooled => stats.spool_waiting.store(true, Ordering::Relaxed),
            Durable::Committed if !stats.spool_waiting.load(Ordering::Relaxed) => stats.caught_up(),
            _ => {}
        }
    }
    tracing::debug!("recorder drained");
}

/// Commits a sealed batch, or spools it when the database refuses; `Failed` only if both refuse.
async fn store_batch(writer: &Writer, sealed: &[SealedRecord]) -> Durable {
    // While the database is known to be down, straight to the spool: each attempt would only add the pool's
    // acquire timeout to every acknowledgement. One quick retry for a passing refusal (a busy SQLite writer,
    // a dropped pooled connection).
    let attempts = if writer.database.is_up() { 2 } else { 0 };
    for attempt in 1..=attempts {
        match tokio::time::timeout(WRITE_TIMEOUT, writer.store.insert_records(sealed)).await {
            Ok(Ok(_)) => return Durable::Committed,
            Ok(Err(error)) => {
                tracing::warn!(%error, attempt, records = sealed.len(), "writing records failed");
                if attempt == 1 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Err(_) => {
                tracing::warn!(
                    records = sealed.len(),
                    "writing records did not finish within {WRITE_TIMEOUT:?}"
                );
                break;
            }
        }
    }
    let Some(spool) = writer.spool.clone() else {
        return Durable::Failed;
    };
    let batch = sealed.to_vec();
    match tokio::task::spawn_blocking(move || spool.append(&batch)).await {
        Ok(Ok(())) => {
            tracing::warn!(
                records = sealed.len(),
                "database unavailable: records spooled to disk, to be written when it answers"
            );
            Durable::Spooled
        }
        Ok(Err(error)) => {
            let ids: Vec<String> = sealed
                .iter()
                .map(|sealed| sealed.record.id.to_string())
                .collect();
            tracing::error!(%error, ?ids, "records could be neither written nor spooled; their exchanges fail");
            Durable::Failed
        }
        Err(error) => {
            tracing::error!(%error, "spooling records failed");
            Durable::Failed
        }
    }
}

/// Moves spooled batches to the database: at start (a previous process may have left some) and then every
/// second while the spool holds any.
async fn replay_spool(spool: Spool, store: Arc<dyn Store>, stats: Arc<RecorderStats>) {
    loop {
        let waiting = spool
            .files()
            .map(|files| !files.is_empty())
            .unwrap_or(false);
        if waiting {
            match spool.replay(store.as_ref()).await {
                Ok(0) => {}
                Ok(written) => {
                    stats.replayed.fetch_add(written as u64, Ordering::Relaxed);
                    tracing::info!(records = written, "spooled records written to the database");
                }
                Err(error) => tracing::debug!(%error, "spooled records wait for the database"),
            }
            if spool.files().is_ok_and(|files| files.is_empty()) {
                stats.spool_waiting.store(false, Ordering::Relaxed);
                stats.caught_up();
            }
        }
        tokio::time::sleep(REPLAY_EVERY).await;
    }
}
