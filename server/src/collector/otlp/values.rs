//! OTLP values as the flattened columns hold them: attributes as one JSON object per row,
//! ids as lowercase hex, times in microseconds, the resource's `service.name` on its own.

use base64::Engine;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Map, Number};

/// An OTLP value as JSON: bytes as base64, a non-finite double as its name.
pub(super) fn json_of(value: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match &value.value {
        None | Some(Value::StringValueStrindex(_)) => J::Null,
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::Number((*i).into()),
        Some(Value::DoubleValue(d)) => {
            Number::from_f64(*d).map_or_else(|| J::String(d.to_string()), J::Number)
        }
        Some(Value::ArrayValue(array)) => J::Array(array.values.iter().map(json_of).collect()),
        Some(Value::KvlistValue(list)) => J::Object(object_of(&list.values)),
        Some(Value::BytesValue(bytes)) => {
            J::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
    }
}

fn object_of(attributes: &[KeyValue]) -> Map<String, serde_json::Value> {
    attributes
        .iter()
        .map(|kv| {
            let value = kv.value.as_ref().map_or(serde_json::Value::Null, json_of);
            (kv.key.clone(), value)
        })
        .collect()
}

/// Attributes as a JSON object text; `None` when there are none.
pub(super) fn attributes(attributes: &[KeyValue]) -> Option<String> {
    (!attributes.is_empty()).then(|| serde_json::Value::Object(object_of(attributes)).to_string())
}

/// A log body: a string as itself, anything else as JSON text.
pub(super) fn body(value: Option<&AnyValue>) -> Option<String> {
    match value?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        _ => Some(json_of(value?).to_string()),
    }
}

/// Lowercase hex of an id; `None` for an empty (absent) one.
pub(super) fn hex_id(bytes: &[u8]) -> Option<String> {
    (!bytes.is_empty()).then(|| hex::encode(bytes))
}

/// Nanoseconds since the epoch as microseconds; `None` for 0 (OTLP's "unset").
pub(super) fn micros(nanos: u64) -> Option<i64> {
    (nanos != 0).then(|| (nanos / 1_000).min(i64::MAX as u64) as i64)
}

/// Text of a non-empty string.
pub(super) fn text(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// What every row of one resource and scope shares.
#[derive(Debug, Clone, Default)]
pub(super) struct Origin {
    pub(super) service_name: Option<String>,
    pub(super) resource_attributes: Option<String>,
    pub(super) scope_name: Option<String>,
    pub(super) scope_version: Option<String>,
}

impl Origin {
    pub(super) fn of(resource: Option<&Resource>) -> Self {
        let attrs = resource.map_or(&[][..], |r| r.attributes.as_slice());
        let service_name = attrs
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => Some(s.clone()),
                _ => None,
            });
        Self {
            service_name,
            resource_attributes: attributes(attrs),
            ..Default::default()
        }
    }

    pub(super) fn with_scope(&self, scope: Option<&InstrumentationScope>) -> Self {
        Self {
            scope_name: scope.and_then(|s| text(&s.name)),
            scope_version: scope.and_then(|s| text(&s.version)),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    #[test]
    fn attributes_are_one_json_object_with_native_values() {
        let nested = KeyValueList {
            values: vec![kv("b", Value::BoolValue(true))],
        };
        let list = ArrayValue {
            values: vec![AnyValue {
                value: Some(Value::IntValue(1)),
            }],
        };
        let text = attributes(&[
            kv("s", Value::StringValue("x".into())),
            kv("i", Value::IntValue(-3)),
            kv("d", Value::DoubleValue(0.5)),
            kv("bytes", Value::BytesValue(vec![1, 2])),
            kv("list", Value::ArrayValue(list)),
            kv("map", Value::KvlistValue(nested)),
        ])
        .unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"s": "x", "i": -3, "d": 0.5, "bytes": "AQI=", "list": [1], "map": {"b": true}})
        );
        assert_eq!(attributes(&[]), None);
    }

    #[test]
    fn unset_times_and_ids_are_null() {
        assert_eq!(micros(0), None);
        assert_eq!(
            micros(1_700_000_000_123_456_789),
            Some(1_700_000_000_123_456)
        );
        assert_eq!(hex_id(&[]), None);
        assert_eq!(hex_id(&[0xab, 0x01]).as_deref(), Some("ab01"));
    }
}
