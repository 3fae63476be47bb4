//! A DoPut's FlightData as the ingest engine takes it: Arrow IPC decoded into the schema
//! and record batches, each batch's `app_metadata` read as its producer and sequence.

use arrow_flight::decode::{DecodedFlightData, DecodedPayload, FlightDataDecoder};
use arrow_flight::error::FlightError;
use arrow_flight::FlightData;
use futures::{Stream, StreamExt, TryStreamExt};

use super::put_metadata;
use crate::ingest::{Incoming, IngestError};

pub(super) fn decode<S>(
    input: S,
) -> impl Stream<Item = Result<Incoming, IngestError>> + Send + Unpin
where
    S: Stream<Item = Result<FlightData, tonic::Status>> + Send + Unpin + 'static,
{
    FlightDataDecoder::new(input.map_err(|status| FlightError::Tonic(Box::new(status))))
        .filter_map(|message| std::future::ready(incoming(message)))
}

/// One decoded message as the engine takes it; `None` for messages that carry no data.
fn incoming(
    message: Result<DecodedFlightData, FlightError>,
) -> Option<Result<Incoming, IngestError>> {
    let decoded = match message {
        Ok(decoded) => decoded,
        Err(e) => return Some(Err(flight_error(e))),
    };
    match decoded.payload {
        DecodedPayload::None => None,
        DecodedPayload::Schema(schema) => Some(Ok(Incoming::Schema(schema))),
        DecodedPayload::RecordBatch(batch) => Some(
            put_metadata::parse(&decoded.inner.app_metadata).map(|sequence| Incoming::Batch {
                batch,
                sequence,
                refused: Vec::new(),
            }),
        ),
    }
}

/// Maps decoder failures: transport errors keep their status, bad bytes are the client's.
fn flight_error(e: FlightError) -> IngestError {
    match e {
        FlightError::Tonic(status) => {
            // tonic's decoder answers OUT_OF_RANGE for one thing only: a message over the
            // configured maximum.
            if status.code() == tonic::Code::OutOfRange {
                IngestError::MessageTooLarge(status.message().to_string())
            } else {
                IngestError::Client(*status)
            }
        }
        other => IngestError::BadIpc(other.to_string()),
    }
}
