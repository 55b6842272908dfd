//! The recorder (interceptor.md "Writing records"): exchanges are handed over a bounded channel to one task
//! that writes them in batches, many records per transaction (a short batch waits up to `LINGER` for more);
//! decoding, redaction and sealing happen on a lower-priority thread beside the runtime. A full channel makes
//! the proxy wait (back-pressure: the last frame of a response is held until its record is queued); nothing is
//! dropped silently; shutdown drains the channel.

use super::capture::{self, Capture, Ending, SharedCapture};
use super::decode;
use crate::records::{Record, RecordKey, SealedRecord};
use crate::rules::{LiveRules, Rules};
use crate::store::Store;
use crate::timestamp::Timestamp;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::PollSender;

/// Most records per transaction.
const BATCH: usize = 512;
/// The sealer thread's nice value. 10 gives it about a tenth of a core the proxy keeps busy (19 starved it
/// into long stalls at saturation; 0 let it delay exchanges at low rates; see BENCHMARKS.md).
#[cfg(target_os = "linux")]
const SEALER_NICE: libc::c_int = 10;
/// How long a short batch waits for more records before it is written.
const LINGER: Duration = Duration::from_millis(5);
/// Attempts to write one batch before it is given up, loudly.
const ATTEMPTS: u32 = 8;

#[derive(Clone)]
pub struct Recorder {
    sender: mpsc::Sender<Record>,
    stats: Arc<RecorderStats>,
}

/// Counters for `/metrics`: records handed to the recorder, written, and given up on.
#[derive(Debug, Default)]
pub struct RecorderStats {
    queued: AtomicU64,
    written: AtomicU64,
    lost: AtomicU64,
}

impl RecorderStats {
    fn queued(&self) {
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// (queued, written, lost) so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        // Written and lost first: a record is queued before it is written, so depth never goes negative.
        let written = self.written.load(Ordering::Relaxed);
        let lost = self.lost.load(Ordering::Relaxed);
        (self.queued.load(Ordering::Relaxed), written, lost)
    }
}

impl Recorder {
    /// Starts the recorder task with room for `queue` records; it ends once every `Recorder` clone is dropped and the queue is written.
    pub fn spawn(
        store: Arc<dyn Store>,
        key: Arc<RecordKey>,
        rules: Arc<LiveRules>,
        body_limit: u64,
        queue: usize,
    ) -> (Recorder, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(queue.max(1));
        let stats = Arc::new(RecorderStats::default());
        let task = tokio::spawn(write_batches(
            receiver,
            store,
            key,
            rules,
            body_limit,
            stats.clone(),
        ));
        (Recorder { sender, stats }, task)
    }

    pub fn stats(&self) -> Arc<RecorderStats> {
        self.stats.clone()
    }

    /// Queues a record, waiting while the queue is full.
    pub async fn record(&self, record: Record) {
        self.stats.queued();
        if self.sender.send(record).await.is_err() {
            self.stats.lost.fetch_add(1, Ordering::Relaxed);
            tracing::error!("recorder stopped; a record could not be queued");
        }
    }

    /// A record whose response is still streaming.
    pub fn pending(&self, record: Record, request: SharedCapture) -> Pending {
        self.stats.queued();
        Pending {
            record: Some(record),
            request,
            sender: PollSender::new(self.sender.clone()),
            stats: self.stats.clone(),
        }
    }
}

/// The record of an exchange in flight, finished by the response body.
pub struct Pending {
    record: Option<Record>,
    request: SharedCapture,
    sender: PollSender<Record>,
    /// Counts the record as queued from the start, so a record still streaming shows in the queue depth.
    stats: Arc<RecorderStats>,
}

impl Pending {
    /// Fills in both bodies and the end of the exchange.
    pub fn finish_response(
        &mut self,
        response: Capture,
        ending: Ending,
        upstream_error: Option<String>,
    ) {
        let Some(record) = self.record.as_mut() else {
            return;
        };
        capture::take(&self.request).into_request_of(record);
        response.into_response_of(record);
        record.timings.ended_at = Some(Timestamp::now());
        record.aborted = ending == Ending::ClientGone;
        if upstream_error.is_some() {
            record.upstream_error = upstream_error;
        }
    }

    /// Marks the exchange aborted: the client left before it had the whole response.
    pub fn client_gone(&mut self) {
        if let Some(record) = self.record.as_mut() {
            record.aborted = true;
        }
    }

    /// Queues the record, or registers to be woken when there is room.
    pub fn poll_hand_over(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.record.is_none() {
            return Poll::Ready(());
        }
        match self.sender.poll_reserve(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => {
                if let Some(record) = self.record.take() {
                    if self.sender.send_item(record).is_err() {
                        self.stats.lost.fetch_add(1, Ordering::Relaxed);
                        tracing::error!("recorder stopped; a record was lost");
                    }
                }
                Poll::Ready(())
            }
            Poll::Ready(Err(_)) => {
                self.stats.lost.fetch_add(1, Ordering::Relaxed);
                tracing::error!("recorder stopped; a record was lost");
                self.record = None;
                Poll::Ready(())
            }
        }
    }

    /// Queues the record without a task to wait in (the body was dropped): at once when there is room, else
    /// from a task of its own.
    pub fn hand_over_now(mut self) {
        let Some(record) = self.record.take() else {
            return;
        };
        let stats = self.stats.clone();
        let Some(sender) = self.sender.get_ref().cloned() else {
            stats.lost.fetch_add(1, Ordering::Relaxed);
            tracing::error!(record_id = %record.id, "recorder stopped; a record was lost");
            return;
        };
        match sender.try_send(record) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(record)) => {
                tokio::spawn(async move {
                    let id = record.id;
                    if sender.send(record).await.is_err() {
                        stats.lost.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(record_id = %id, "recorder stopped; a record was lost");
                    }
                });
            }
            Err(mpsc::error::TrySendError::Closed(record)) => {
                stats.lost.fetch_add(1, Ordering::Relaxed);
                tracing::error!(record_id = %record.id, "recorder stopped; a record was lost");
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
            rules.redaction.record(&mut record);
            key.seal(record)
        })
        .collect()
}

/// Decodes, redacts and seals batches on a thread of its own at a lower CPU priority: recording is background
/// work, so on a busy core the forwarding path runs first; the bounded queue bounds how far behind recording
/// can fall before the proxy waits for it.
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
                lower_this_threads_priority();
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

#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // On Linux a nice value belongs to a thread; `who = 0` is the calling thread. Failure only costs latency.
    // SAFETY: setpriority reads its integer arguments and touches no memory of ours.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, SEALER_NICE) };
    if result != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "record sealer keeps normal priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}

async fn write_batches(
    mut receiver: mpsc::Receiver<Record>,
    store: Arc<dyn Store>,
    key: Arc<RecordKey>,
    rules: Arc<LiveRules>,
    body_limit: u64,
    stats: Arc<RecorderStats>,
) {
    let sealer = match Sealer::start(key.clone(), body_limit) {
        Ok(sealer) => Some(sealer),
        Err(error) => {
            tracing::warn!(%error, "no sealer thread; sealing on the runtime");
            None
        }
    };
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        // Wait a moment for more: at low rates a few exchanges then share one transaction.
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            let room = BATCH - batch.len();
            match tokio::time::timeout_at(deadline, receiver.recv_many(&mut batch, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let records = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
        let batch_size = records.len();
        let rules = rules.current();
        let sealed = match &sealer {
            Some(sealer) => match sealer.seal(records, rules).await {
                Some(sealed) => sealed,
                None => {
                    stats.lost.fetch_add(batch_size as u64, Ordering::Relaxed);
                    tracing::error!("the record sealer stopped; a batch of records is lost");
                    continue;
                }
            },
            None => seal_batch(records, &rules, &key, body_limit),
        };
        let mut delay = Duration::from_millis(50);
        for attempt in 1..=ATTEMPTS {
            match store.insert_records(&sealed).await {
                Ok(_) => {
                    stats
                        .written
                        .fetch_add(sealed.len() as u64, Ordering::Relaxed);
                    break;
                }
                Err(error) if attempt < ATTEMPTS => {
                    tracing::warn!(%error, attempt, records = sealed.len(), "writing records failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(error) => {
                    let ids: Vec<String> = sealed
                        .iter()
                        .map(|sealed| sealed.record.id.to_string())
                        .collect();
                    stats.lost.fetch_add(sealed.len() as u64, Ordering::Relaxed);
                    tracing::error!(%error, ?ids, "records could not be written and are lost");
                }
            }
        }
    }
    tracing::debug!("recorder drained");
}
