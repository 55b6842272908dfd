//! The tee: bodies stream through the proxy frame by frame, never buffered whole, while up to the record body
//! limit of each is copied for the record. The response side also finishes the record when the body ends (or
//! the client goes away) and hands it to the recorder, waiting while the recorder's queue is full.

use super::recorder::{Durable, Pending};
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

/// The recorded copy of one body.
#[derive(Debug, Default)]
pub struct Capture {
    pub bytes: Vec<u8>,
    /// Bytes that passed through, recorded or not.
    pub size: u64,
    pub truncated: bool,
    limit: usize,
}

impl Capture {
    pub fn new(limit: u64) -> Capture {
        Capture {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            ..Capture::default()
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.size += chunk.len() as u64;
        let room = self.limit.saturating_sub(self.bytes.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
}

/// The request body's copy, written by the upstream leg and read when the record is finished.
pub type SharedCapture = Arc<Mutex<Capture>>;

/// Takes what a shared capture holds (an empty capture if a panic poisoned it mid-copy).
pub fn take(capture: &SharedCapture) -> Capture {
    capture
        .lock()
        .map(|mut capture| std::mem::take(&mut *capture))
        .unwrap_or_default()
}

fn push_shared(capture: &SharedCapture, chunk: &[u8]) {
    // A poisoned capture only loses the copy, never the forwarded bytes.
    if let Ok(mut capture) = capture.lock() {
        capture.push(chunk);
    }
}

/// The client's request body on its way upstream, copied into a capture the record reads later.
pub struct RequestTee {
    inner: Incoming,
    capture: SharedCapture,
}

impl RequestTee {
    pub fn new(inner: Incoming, capture: SharedCapture) -> RequestTee {
        RequestTee { inner, capture }
    }
}

impl Body for RequestTee {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame {
            if let Some(data) = frame.data_ref() {
                push_shared(&self.capture, data);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How the response body ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Every byte reached the client.
    Complete,
    /// The upstream broke off mid-body.
    UpstreamFailed,
    /// The client went away before the end.
    ClientGone,
}

enum State {
    Streaming,
    /// The body has ended; its end (the last frame, or the end of a chunked body) is held back until the
    /// record is durable, so that a client holding a complete response and its record id can rely on the
    /// record, and a full queue slows the proxy down instead of piling records up in memory.
    Handing(Option<Frame<Bytes>>),
    Done,
}

/// Why a response was cut off before its end.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// The record of an exchange could be neither committed nor spooled: the client must not take the response
/// (and the record id it carries) as complete.
#[derive(Debug, thiserror::Error)]
#[error("the exchange's record could not be stored; the response is cut off")]
pub struct RecordNotDurable;

/// The upstream's response body on its way to the client; finishes the exchange's record at the end.
pub struct ResponseTee {
    inner: Incoming,
    capture: Capture,
    pending: Option<Pending>,
    upstream_error: Option<String>,
    state: State,
}

impl ResponseTee {
    pub fn new(inner: Incoming, limit: u64, pending: Pending) -> ResponseTee {
        ResponseTee {
            inner,
            capture: Capture::new(limit),
            pending: Some(pending),
            upstream_error: None,
            state: State::Streaming,
        }
    }

    fn finish(&mut self, ending: Ending) {
        if let Some(pending) = self.pending.as_mut() {
            pending.finish_response(
                std::mem::take(&mut self.capture),
                ending,
                self.upstream_error.take(),
            );
        }
    }
}

impl Body for ResponseTee {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        loop {
            match self.state {
                State::Streaming => match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            self.capture.push(data);
                        }
                        // With a Content-Length, hyper stops polling once that many bytes went out, so the
                        // last frame is where the exchange ends: finish now, and pass the frame on once the
                        // record is queued.
                        if self.inner.is_end_stream() {
                            self.finish(Ending::Complete);
                            self.state = State::Handing(Some(frame));
                            continue;
                        }
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    Some(Err(error)) => {
                        self.upstream_error = Some(format!("upstream body: {error}"));
                        self.finish(Ending::UpstreamFailed);
                        // Hand the record over before passing the failure on: hyper drops the body after.
                        if let Some(pending) = self.pending.take() {
                            pending.hand_over_now();
                        }
                        self.state = State::Done;
                        return Poll::Ready(Some(Err(error.into())));
                    }
                    None => {
                        self.finish(Ending::Complete);
                        self.state = State::Handing(None);
                    }
                },
                State::Handing(_) => {
                    let durable = match self.pending.as_mut() {
                        Some(pending) => ready!(pending.poll_durable(cx)),
                        None => Durable::Failed,
                    };
                    self.pending = None;
                    let held = std::mem::replace(&mut self.state, State::Done);
                    if durable == Durable::Failed {
                        return Poll::Ready(Some(Err(Box::new(RecordNotDurable))));
                    }
                    if let State::Handing(Some(frame)) = held {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                }
                State::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Streaming => self.inner.size_hint(),
            State::Handing(Some(frame)) => {
                SizeHint::with_exact(frame.data_ref().map_or(0, |data| data.len() as u64))
            }
            _ => SizeHint::with_exact(0),
        }
    }
}

impl Drop for ResponseTee {
    fn drop(&mut self) {
        if matches!(self.state, State::Streaming) {
            let ending = if self.inner.is_end_stream() {
                Ending::Complete
            } else {
                Ending::ClientGone
            };
            self.finish(ending);
        }
        if let Some(mut pending) = self.pending.take() {
            if matches!(self.state, State::Handing(Some(_))) {
                // The client left while the last frame waited for the recorder.
                pending.client_gone();
            }
            pending.hand_over_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Capture;

    #[test]
    fn a_capture_keeps_the_first_limit_bytes_and_counts_all() {
        let mut capture = Capture::new(5);
        capture.push(b"abc");
        assert!(!capture.truncated);
        capture.push(b"defg");
        capture.push(b"hij");
        assert_eq!(capture.bytes, b"abcde");
        assert_eq!(capture.size, 10);
        assert!(capture.truncated);
        let mut exact = Capture::new(3);
        exact.push(b"abc");
        exact.push(b"");
        assert!(!exact.truncated, "exactly the limit is not truncated");
    }
}
