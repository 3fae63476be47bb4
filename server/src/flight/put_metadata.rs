//! Reads `IngestMetadata` from a FlightData's `app_metadata`: protobuf, or JSON with the
//! same field names.

use lakeport_proto::IngestMetadata;
use prost::Message;

use crate::ingest::IngestError;

const MAX_PRODUCER_ID: usize = 256;

/// A validated (producer, sequence) pair; `None` for a batch without metadata.
pub(super) fn parse(app_metadata: &[u8]) -> Result<Option<(String, i64)>, IngestError> {
    if app_metadata.is_empty() {
        return Ok(None);
    }
    let meta = if app_metadata.first() == Some(&b'{') {
        let value: serde_json::Value = serde_json::from_slice(app_metadata)
            .map_err(|e| IngestError::BadMetadata(format!("not JSON: {e}")))?;
        let producer_id = value
            .get("producer_id")
            .and_then(|v| v.as_str())
            .ok_or_else(|| IngestError::BadMetadata("JSON needs a string producer_id".into()))?
            .to_string();
        let sequence = value
            .get("sequence")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| {
                IngestError::BadMetadata("JSON needs an unsigned integer sequence".into())
            })?;
        IngestMetadata {
            producer_id,
            sequence,
        }
    } else {
        IngestMetadata::decode(app_metadata)
            .map_err(|e| IngestError::BadMetadata(format!("not an IngestMetadata protobuf: {e}")))?
    };
    if meta.producer_id.is_empty() || meta.producer_id.len() > MAX_PRODUCER_ID {
        return Err(IngestError::BadMetadata(format!(
            "producer_id must be 1 to {MAX_PRODUCER_ID} bytes"
        )));
    }
    let sequence = i64::try_from(meta.sequence)
        .map_err(|_| IngestError::BadMetadata("sequence must be below 2^63".into()))?;
    Ok(Some((meta.producer_id, sequence)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_json_and_empty() {
        let pb = IngestMetadata {
            producer_id: "p".into(),
            sequence: 7,
        }
        .encode_to_vec();
        assert_eq!(parse(&pb).unwrap(), Some(("p".into(), 7)));
        assert_eq!(
            parse(br#"{"producer_id":"q","sequence":3}"#).unwrap(),
            Some(("q".into(), 3))
        );
        assert_eq!(parse(b"").unwrap(), None);
        assert!(parse(br#"{"producer_id":"q"}"#).is_err());
        assert!(parse(b"\xff\xff").is_err());
        assert!(parse(
            &IngestMetadata {
                producer_id: "".into(),
                sequence: 1
            }
            .encode_to_vec()
        )
        .is_err());
    }
}
