//! Memory for a DoPut's messages is reserved as their bytes arrive, before tonic buffers
//! them: a wrapper around the request body reads each gRPC message's length prefix and
//! holds the frame back until the ingest budget has room for the whole message. A stream
//! waiting here stops reading, so HTTP/2 flow control stops its producer. The stream takes
//! what was reserved for its messages (`ingest::intake::Intake`) into the unit that holds
//! their rows.
//!
//! tonic copies each message into the stream's receive buffer, which keeps the capacity of
//! the largest message until the stream ends, next to the rows taken from it: with 50
//! streams of 9 MiB messages that was 450 MiB outside the budget. The gate reserves that
//! buffer too, from the budget's share for buffers, and gives it back when the stream ends.
//! Outside the budget stay each stream's HTTP/2 window and the encoders' working memory
//! (see docs/configuration.md, `memory_limit`).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;
use tonic::Status;

use crate::error::Error;
use crate::ingest::budget::{BudgetClosed, MemoryBudget, Reservation};
use crate::ingest::intake::Intake;
use crate::lake::LakeError;

/// The one call whose request body the gate watches.
const DO_PUT_PATH: &str = "/arrow.flight.protocol.FlightService/DoPut";
/// gRPC frames each message with a compression flag and a 4-byte big-endian length.
const PREFIX: usize = 5;

/// Installed in front of the Flight service (see `server.rs`).
#[derive(Debug, Clone)]
pub struct IntakeGate {
    budget: MemoryBudget,
    max_message_size: usize,
}

impl IntakeGate {
    pub fn new(budget: MemoryBudget, max_message_size: usize) -> Self {
        Self {
            budget,
            max_message_size,
        }
    }

    /// Wraps a DoPut's body and puts its `Intake` in the request extensions; other calls
    /// pass unchanged.
    pub fn admit(&self, mut request: http::Request<Body>) -> http::Request<Body> {
        if request.uri().path() != DO_PUT_PATH {
            return request;
        }
        let intake = Intake::default();
        request.extensions_mut().insert(intake.clone());
        request.map(|inner| {
            Body::new(GatedBody {
                inner,
                gate: self.clone(),
                intake,
                framing: Framing::default(),
                buffer: Reservation::default(),
                held: None,
                waiting: None,
            })
        })
    }
}

/// What a held frame waits for: the growth of the stream's receive buffer, then its rows.
type Waiting =
    Pin<Box<dyn Future<Output = Result<(Reservation, Reservation), BudgetClosed>> + Send>>;

struct GatedBody {
    inner: Body,
    gate: IntakeGate,
    intake: Intake,
    framing: Framing,
    /// The stream's receive buffer, held until the stream ends.
    buffer: Reservation,
    /// A frame whose messages wait for memory.
    held: Option<Frame<Bytes>>,
    waiting: Option<Waiting>,
}

impl GatedBody {
    /// Reserves, without waiting, the rows of messages worth `bytes` and the growth of the
    /// receive buffer to `largest`; nothing is kept unless both fit.
    fn try_admit(&mut self, bytes: usize, largest: usize) -> bool {
        let budget = &self.gate.budget;
        let growth = budget
            .buffer_size(largest)
            .saturating_sub(self.buffer.bytes());
        let buffer = match growth {
            0 => Reservation::default(),
            growth => match budget.try_reserve_buffer(growth) {
                Some(buffer) => buffer,
                None => return false,
            },
        };
        let Some(rows) = budget.try_reserve(bytes) else {
            return false;
        };
        self.buffer.merge(buffer);
        self.intake.add(rows);
        true
    }
}

impl HttpBody for GatedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if let Some(waiting) = &mut this.waiting {
            let granted = ready!(waiting.as_mut().poll(cx));
            this.waiting = None;
            return match granted {
                Ok((buffer, rows)) => {
                    this.buffer.merge(buffer);
                    this.intake.add(rows);
                    Poll::Ready(this.held.take().map(Ok))
                }
                Err(BudgetClosed) => {
                    Poll::Ready(Some(Err(Error::from(LakeError::ShuttingDown).into())))
                }
            };
        }
        let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            other => return Poll::Ready(other),
        };
        let Messages { bytes, largest } = match frame.data_ref() {
            Some(data) => this.framing.feed(data, this.gate.max_message_size),
            None => Messages::default(),
        };
        if bytes == 0 || this.try_admit(bytes, largest) {
            return Poll::Ready(Some(Ok(frame)));
        }
        tracing::debug!(bytes, "DoPut waits for ingest memory");
        this.intake.starve();
        let budget = this.gate.budget.clone();
        // A buffer that must grow is given back while it waits: streams that all wait to
        // grow their buffers would otherwise hold the share between them forever.
        let buffer = budget.buffer_size(largest);
        let buffer = if buffer > this.buffer.bytes() {
            drop(std::mem::take(&mut this.buffer));
            buffer
        } else {
            0
        };
        this.held = Some(frame);
        this.waiting = Some(Box::pin(async move {
            let buffer = match buffer {
                0 => Reservation::default(),
                size => budget.reserve_buffer(size).await?,
            };
            Ok((buffer, budget.reserve(bytes).await?))
        }));
        // Poll the wait once now, so it registers for a wake-up.
        Pin::new(this).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The messages whose length prefix completed in a frame.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Messages {
    bytes: usize,
    largest: usize,
}

/// Follows gRPC message boundaries across HTTP/2 DATA frames.
#[derive(Debug, Default)]
struct Framing {
    prefix: [u8; PREFIX],
    prefix_len: usize,
    body_left: usize,
}

impl Framing {
    /// Reads a frame; returns the messages whose length prefix completed in it. A message
    /// over `max` is not counted: tonic refuses it on its prefix alone.
    fn feed(&mut self, mut data: &[u8], max: usize) -> Messages {
        let mut found = Messages::default();
        while !data.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(data.len());
                self.body_left -= n;
                data = &data[n..];
                continue;
            }
            let n = (PREFIX - self.prefix_len).min(data.len());
            self.prefix[self.prefix_len..self.prefix_len + n].copy_from_slice(&data[..n]);
            self.prefix_len += n;
            data = &data[n..];
            if self.prefix_len == PREFIX {
                self.prefix_len = 0;
                let len =
                    u32::from_be_bytes(self.prefix[1..].try_into().expect("4 bytes")) as usize;
                self.body_left = len;
                if len <= max {
                    found.bytes += len;
                    found.largest = found.largest.max(len);
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: usize) -> Vec<u8> {
        let mut out = vec![0u8];
        out.extend_from_slice(&(len as u32).to_be_bytes());
        out.extend(std::iter::repeat_n(7u8, len));
        out
    }

    #[test]
    fn counts_each_message_once_when_its_prefix_completes() {
        let mut stream = message(10);
        stream.extend(message(300));
        stream.extend(message(0));
        stream.extend(message(42));
        // Cut into frames at awkward places: inside a prefix, inside a body.
        let cuts = [3, 12, 16, 200, 320, 321, stream.len()];
        let mut framing = Framing::default();
        let mut start = 0;
        let mut counted = vec![];
        for cut in cuts {
            counted.push(framing.feed(&stream[start..cut], 1 << 20).bytes);
            start = cut;
        }
        assert_eq!(counted, vec![0, 10, 0, 300, 0, 0, 42]);
        assert_eq!(counted.iter().sum::<usize>(), 352);
    }

    #[test]
    fn a_message_over_the_maximum_is_left_to_tonic() {
        let mut framing = Framing::default();
        assert_eq!(framing.feed(&message(100), 99), Messages::default());
        let mut framing = Framing::default();
        let mut two = message(99);
        two.extend(message(10));
        let found = framing.feed(&two, 99);
        assert_eq!((found.bytes, found.largest), (109, 99));
    }

    type Frames = tokio::sync::mpsc::Sender<Result<Frame<Bytes>, Status>>;

    /// A DoPut through a gate over `budget`: its frames go in through the sender.
    fn gated_put(budget: &MemoryBudget) -> (Frames, Intake, Body) {
        let gate = IntakeGate::new(budget.clone(), 1 << 20);
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        let request = http::Request::builder()
            .uri(DO_PUT_PATH)
            .body(Body::new(body))
            .unwrap();
        let request = gate.admit(request);
        let intake = request.extensions().get::<Intake>().cloned().unwrap();
        (tx, intake, request.into_body())
    }

    /// Sends one gRPC message of `len` bytes as one DATA frame.
    async fn send_message(tx: &Frames, len: usize) {
        tx.send(Ok(Frame::data(Bytes::from(message(len)))))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_frame_waits_until_the_budget_has_room_for_its_message() {
        use futures::FutureExt;
        use http_body_util::BodyExt;

        let budget = MemoryBudget::new(64 << 10);
        let (tx, intake, mut body) = gated_put(&budget);

        let held = budget.try_reserve(20 << 10).unwrap();
        send_message(&tx, 30 << 10).await;
        assert!(
            body.frame().now_or_never().is_none(),
            "30 KiB of buffer and 30 KiB of rows do not fit in 44 KiB"
        );
        assert!(
            intake.starved().now_or_never().is_some(),
            "the stream is told to flush"
        );
        drop(held);
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap().len(), PREFIX + (30 << 10));
        let taken = intake.take();
        assert!(
            budget.try_reserve(5 << 10).is_none(),
            "the message's memory is held twice: its rows and the buffer"
        );
        drop(taken);
        assert!(budget.try_reserve(30 << 10).is_some());
        assert!(
            budget.try_reserve_buffer(3 << 10).is_none(),
            "the receive buffer keeps 30 of its 32 KiB share while the stream lasts"
        );
        send_message(&tx, 20 << 10).await;
        assert!(
            body.frame().now_or_never().is_some(),
            "a smaller message fits the buffer and needs only its rows"
        );
        drop(intake.take());
        drop(body);
        assert!(budget.try_reserve_buffer(32 << 10).is_some());
    }

    #[tokio::test]
    async fn messages_above_the_buffer_share_pass_without_waiting_again() {
        use futures::FutureExt;
        use http_body_util::BodyExt;

        let budget = MemoryBudget::new(64 << 10);
        let (tx, intake, mut body) = gated_put(&budget);
        for _ in 0..2 {
            send_message(&tx, 40 << 10).await;
            assert!(
                body.frame().now_or_never().is_some(),
                "a 40 KiB message takes the 32 KiB share and half of the budget for its rows"
            );
            assert!(
                intake.starved().now_or_never().is_none(),
                "nothing waited, so the stream is not told to flush"
            );
            drop(intake.take());
        }
    }
}
