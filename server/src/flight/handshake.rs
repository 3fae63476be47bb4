//! Flight `Handshake`: Basic `tenant:token` in, `authorization: Bearer <token>` out (the
//! exchange ADBC and JDBC Flight SQL drivers perform when given a username and password).

use std::pin::Pin;

use arrow_flight::HandshakeResponse;
use futures::Stream;
use tonic::metadata::MetadataValue;
use tonic::{Response, Status};

use super::CallError;
use crate::auth::Authenticator;
use crate::error::Error;

pub(super) type HandshakeStream =
    Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>;

pub(super) fn handshake(
    auth: &Authenticator,
    metadata: &tonic::metadata::MetadataMap,
) -> Result<Response<HandshakeStream>, Status> {
    let (_, bearer) = auth
        .handshake(metadata)
        .map_err(|e| Status::from(Error::from(e)))?;
    let payload = HandshakeResponse {
        protocol_version: 0,
        payload: bearer.clone().into_bytes().into(),
    };
    let mut response: Response<HandshakeStream> =
        Response::new(Box::pin(futures::stream::iter([Ok(payload)])));
    if !bearer.is_empty() {
        let value: MetadataValue<_> = format!("Bearer {bearer}").parse().map_err(|_| {
            Status::from(Error::from(CallError::BadHeader {
                header: "authorization",
                problem: "cannot carry this token: it holds characters not allowed in a header",
            }))
        })?;
        response.metadata_mut().insert("authorization", value);
    }
    Ok(response)
}
