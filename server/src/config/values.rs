//! How setting values are written: durations (`250ms`), sizes (`64MiB`), compression. Each
//! parser serves the flag (clap) and the file (serde) alike; flags reach serde as text, so
//! every deserializer also accepts the text form.

use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Deserializer};

/// A duration like `250ms`, `10s`, `5m`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("{text:?} is not a duration: {e}"))
}

/// A size like `64MiB`, `1GiB` or a plain byte count.
pub(crate) fn parse_size(text: &str) -> Result<usize, String> {
    text.trim()
        .parse::<ByteSize>()
        .map(|b| b.as_u64() as usize)
        .map_err(|e| format!("{text:?} is not a size (like 64MiB): {e}"))
}

/// Text or a TOML value of type `T`.
#[derive(Deserialize)]
#[serde(untagged)]
enum TextOr<T> {
    Value(T),
    Text(String),
}

pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

pub(crate) fn size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match TextOr::<u64>::deserialize(d)? {
        TextOr::Value(n) => Ok(n as usize),
        TextOr::Text(text) => parse_size(&text).map_err(serde::de::Error::custom),
    }
}

pub(crate) fn optional_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    size(d).map(Some)
}

pub(crate) fn number<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match TextOr::<u64>::deserialize(d)? {
        TextOr::Value(n) => Ok(n as usize),
        TextOr::Text(text) => text.trim().parse().map_err(serde::de::Error::custom),
    }
}

pub(crate) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match TextOr::<bool>::deserialize(d)? {
        TextOr::Value(b) => Ok(b),
        TextOr::Text(text) => text.trim().parse().map_err(serde::de::Error::custom),
    }
}

pub(crate) fn optional_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match TextOr::<bool>::deserialize(d)? {
        TextOr::Value(b) => Ok(Some(b)),
        TextOr::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(Some(true)),
            "false" | "no" | "off" | "0" => Ok(Some(false)),
            other => Err(serde::de::Error::custom(format!(
                "{other:?} is not true or false"
            ))),
        },
    }
}

/// IP networks (`10.0.0.0/8`) or single addresses, as a TOML array or comma-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(pub Vec<ipnet::IpNet>);

pub(crate) fn parse_networks(text: &str) -> Result<Networks, String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(parse_network)
        .collect::<Result<_, _>>()
        .map(Networks)
}

fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not an IP address or network like 10.0.0.0/8"))
}

pub(crate) fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Networks, D::Error> {
    match TextOr::<Vec<String>>::deserialize(d)? {
        TextOr::Value(list) => list
            .iter()
            .map(|t| parse_network(t.trim()))
            .collect::<Result<_, _>>()
            .map(Networks)
            .map_err(serde::de::Error::custom),
        TextOr::Text(text) => parse_networks(&text).map_err(serde::de::Error::custom),
    }
}

pub(crate) fn compression<'de, D: Deserializer<'de>>(d: D) -> Result<Compression, D::Error> {
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

/// zstd's level when none is given. Parquet pages are small and already dictionary- or
/// RLE-encoded, so level 3 buys nothing over level 1 on event data (the bench's table came
/// out 0.35% smaller at level 1) and costs about a fifth more ingest CPU.
pub(super) const DEFAULT_ZSTD_LEVEL: i32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Snappy,
    Lz4,
    Zstd(i32),
}

impl std::str::FromStr for Compression {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.trim().to_ascii_lowercase();
        match lower.as_str() {
            "none" | "uncompressed" => Ok(Self::None),
            "snappy" => Ok(Self::Snappy),
            "lz4" => Ok(Self::Lz4),
            "zstd" => Ok(Self::Zstd(DEFAULT_ZSTD_LEVEL)),
            _ => {
                let level = lower
                    .strip_prefix("zstd(")
                    .and_then(|rest| rest.strip_suffix(')'))
                    .and_then(|n| n.parse::<i32>().ok())
                    .filter(|n| (1..=22).contains(n))
                    .ok_or_else(|| {
                        format!("unknown compression {text:?}: use zstd, zstd(1..22), snappy, lz4 or none")
                    })?;
                Ok(Self::Zstd(level))
            }
        }
    }
}
