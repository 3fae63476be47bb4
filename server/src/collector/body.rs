//! Reading a request body: within the size limit and the time limit, gunzipped when the
//! client says so (OTLP exporters compress by default), never past the limit in memory.

use std::io::Read;

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use http_body_util::BodyExt;

use super::{CollectorSettings, Refusal};

/// The body, decompressed.
pub(super) async fn read(
    headers: &HeaderMap,
    body: Body,
    settings: &CollectorSettings,
) -> Result<Bytes, Refusal> {
    let limit = settings.max_body;
    let limited = http_body_util::Limited::new(body, limit);
    let raw = match tokio::time::timeout(settings.body_timeout, limited.collect()).await {
        Err(_) => return Err(Refusal::SlowBody(settings.body_timeout)),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(Refusal::TooLarge { limit })
        }
        Ok(Err(e)) => return Err(Refusal::Malformed(format!("reading the body failed: {e}"))),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let encoding = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(raw),
        "gzip" | "x-gzip" => gunzip(&raw, limit),
        other => Err(Refusal::Encoding(other.to_string())),
    }
}

/// Decompresses at most `limit` bytes: a small bomb cannot fill memory.
fn gunzip(raw: &[u8], limit: usize) -> Result<Bytes, Refusal> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(raw).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| Refusal::Malformed(format!("the gzip body does not decompress: {e}")))?;
    if out.len() > limit {
        return Err(Refusal::TooLarge { limit });
    }
    Ok(out.into())
}

/// The media type of the request, without parameters, lowercased.
pub(super) fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_is_decoded_within_the_limit_only() {
        let data = vec![b'a'; 10_000];
        assert_eq!(gunzip(&gz(&data), 10_000).unwrap().len(), 10_000);
        assert!(matches!(
            gunzip(&gz(&data), 9_999),
            Err(Refusal::TooLarge { limit: 9_999 })
        ));
        assert!(matches!(
            gunzip(b"not gzip", 100),
            Err(Refusal::Malformed(_))
        ));
    }
}
