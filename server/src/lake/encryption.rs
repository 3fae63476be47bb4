//! Tenant-specific encryption keys and how each store kind applies them to every request
//! made for that tenant: S3 SSE-KMS and SSE-C through object_store's keys, Azure
//! encryption scopes and GCS CMEK as default headers of the store's HTTP client.

use std::path::PathBuf;

use base64::Engine;
use object_store::client::ClientOptions;
use serde::Deserialize;
use sha2::Digest;

use super::store_kind::StoreKind;

/// A tenant's key as configured: `encryption = { kind = "...", ... }`. SSE-C keys are only
/// ever given by reference, never inline.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum KeySpec {
    /// S3 SSE-KMS with this KMS key (ARN, id or alias).
    SseKms {
        key_id: String,
        #[serde(default)]
        bucket_key: Option<bool>,
    },
    /// S3 SSE-C: a 256-bit key, base64 (or 32 raw bytes in a file), from `key_env` or `key_file`.
    SseC {
        key_env: Option<String>,
        key_file: Option<PathBuf>,
    },
    /// Azure Blob encryption scope (`x-ms-encryption-scope`).
    AzureScope { scope: String },
    /// GCS customer-managed KMS key (`x-goog-encryption-kms-key-name`).
    GcsCmek { key_name: String },
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("sse-c needs exactly one of key_env or key_file")]
    SseCSource,
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    #[error("cannot read key file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "an SSE-C key is 32 bytes, base64-encoded (or 32 raw bytes in a file); got something else"
    )]
    BadSseCKey,
    #[error("{0:?} cannot be sent as a header value (control characters or non-ASCII)")]
    NotAHeader(String),
}

/// A tenant's key ready to apply. The SSE-C key never appears in `Debug` or errors.
#[derive(Clone, PartialEq, Eq)]
pub enum TenantKey {
    SseKms {
        key_id: String,
        bucket_key: Option<bool>,
    },
    SseC {
        key_base64: String,
    },
    AzureScope {
        scope: String,
    },
    GcsCmek {
        key_name: String,
    },
}

impl std::fmt::Debug for TenantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TenantKey({})", self.id())
    }
}

impl KeySpec {
    /// Reads an SSE-C key from its reference; the other kinds carry no secret.
    pub fn resolve(&self) -> Result<TenantKey, KeyError> {
        Ok(match self {
            KeySpec::SseKms { key_id, bucket_key } => TenantKey::SseKms {
                key_id: key_id.clone(),
                bucket_key: *bucket_key,
            },
            KeySpec::SseC { key_env, key_file } => {
                let raw = match (key_env, key_file) {
                    (Some(var), None) => std::env::var(var)
                        .map_err(|_| KeyError::MissingEnv(var.clone()))?
                        .into_bytes(),
                    (None, Some(path)) => std::fs::read(path).map_err(|source| KeyError::File {
                        path: path.clone(),
                        source,
                    })?,
                    _ => return Err(KeyError::SseCSource),
                };
                TenantKey::SseC {
                    key_base64: sse_c_key(&raw)?,
                }
            }
            KeySpec::AzureScope { scope } => TenantKey::AzureScope {
                scope: scope.clone(),
            },
            KeySpec::GcsCmek { key_name } => TenantKey::GcsCmek {
                key_name: key_name.clone(),
            },
        })
    }
}

/// Accepts 32 raw bytes or their base64 text (trailing newline allowed).
fn sse_c_key(raw: &[u8]) -> Result<String, KeyError> {
    let engine = base64::engine::general_purpose::STANDARD;
    if raw.len() == 32 {
        return Ok(engine.encode(raw));
    }
    let text = std::str::from_utf8(raw).map_err(|_| KeyError::BadSseCKey)?;
    let decoded = engine
        .decode(text.trim())
        .map_err(|_| KeyError::BadSseCKey)?;
    if decoded.len() != 32 {
        return Err(KeyError::BadSseCKey);
    }
    Ok(engine.encode(decoded))
}

impl TenantKey {
    /// The configured kind, as written in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            TenantKey::SseKms { .. } => "sse-kms",
            TenantKey::SseC { .. } => "sse-c",
            TenantKey::AzureScope { .. } => "azure-scope",
            TenantKey::GcsCmek { .. } => "gcs-cmek",
        }
    }

    /// Names the key without revealing it: the KMS key or scope, or a fingerprint of an
    /// SSE-C key. Store clients are cached under it.
    pub fn id(&self) -> String {
        match self {
            TenantKey::SseKms { key_id, .. } => format!("sse-kms:{key_id}"),
            TenantKey::SseC { key_base64 } => {
                let digest = sha2::Sha256::digest(key_base64.as_bytes());
                format!("sse-c:{}", hex::encode(&digest[..8]))
            }
            TenantKey::AzureScope { scope } => format!("azure-scope:{scope}"),
            TenantKey::GcsCmek { key_name } => format!("gcs-cmek:{key_name}"),
        }
    }

    /// Whether a store of this kind can apply the key.
    pub fn applies_to(&self, kind: StoreKind) -> bool {
        matches!(
            (self, kind),
            (
                TenantKey::SseKms { .. } | TenantKey::SseC { .. },
                StoreKind::S3
            ) | (TenantKey::AzureScope { .. }, StoreKind::Azure)
                | (TenantKey::GcsCmek { .. }, StoreKind::Gcs)
        )
    }

    /// object_store configuration keys that apply the key (S3 only).
    pub(crate) fn store_options(&self) -> Vec<(&'static str, String)> {
        match self {
            TenantKey::SseKms { key_id, bucket_key } => {
                let mut options = vec![
                    ("aws_server_side_encryption", "aws:kms".to_string()),
                    ("aws_sse_kms_key_id", key_id.clone()),
                ];
                if let Some(enabled) = bucket_key {
                    options.push(("aws_sse_bucket_key_enabled", enabled.to_string()));
                }
                options
            }
            TenantKey::SseC { key_base64 } => vec![
                ("aws_server_side_encryption", "sse-c".to_string()),
                ("aws_sse_customer_key_base64", key_base64.clone()),
            ],
            TenantKey::AzureScope { .. } | TenantKey::GcsCmek { .. } => Vec::new(),
        }
    }

    /// Default headers that apply the key (Azure and GCS have no object_store key for it).
    /// Fails when the scope or key name cannot travel in a header: the key would otherwise
    /// silently not apply.
    pub(crate) fn client_options(&self, options: ClientOptions) -> Result<ClientOptions, KeyError> {
        let header = match self {
            TenantKey::AzureScope { scope } => Some(("x-ms-encryption-scope", scope)),
            TenantKey::GcsCmek { key_name } => Some(("x-goog-encryption-kms-key-name", key_name)),
            TenantKey::SseKms { .. } | TenantKey::SseC { .. } => None,
        };
        let Some((name, value)) = header else {
            return Ok(options);
        };
        let value =
            http::HeaderValue::from_str(value).map_err(|_| KeyError::NotAHeader(value.clone()))?;
        let mut headers = http::HeaderMap::new();
        headers.insert(name, value);
        Ok(options.with_default_headers(headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_c_keys_come_as_raw_bytes_or_base64_and_never_show() {
        let raw = [7u8; 32];
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        assert_eq!(sse_c_key(&raw).unwrap(), b64);
        assert_eq!(sse_c_key(format!("{b64}\n").as_bytes()).unwrap(), b64);
        assert!(sse_c_key(b"short").is_err());
        let key = TenantKey::SseC {
            key_base64: b64.clone(),
        };
        assert!(!format!("{key:?}").contains(&b64));
        assert!(!key.id().contains(&b64));
    }

    #[test]
    fn keys_apply_only_to_their_store_kind() {
        let kms = TenantKey::SseKms {
            key_id: "k".into(),
            bucket_key: None,
        };
        assert!(kms.applies_to(StoreKind::S3));
        assert!(!kms.applies_to(StoreKind::Azure));
        assert!(!kms.applies_to(StoreKind::Local));
        let scope = TenantKey::AzureScope { scope: "s".into() };
        assert!(scope.applies_to(StoreKind::Azure));
        assert!(scope.client_options(ClientOptions::new()).is_ok());
        let broken = TenantKey::GcsCmek {
            key_name: "projects/p\nkeys/k".into(),
        };
        assert!(matches!(
            broken.client_options(ClientOptions::new()),
            Err(KeyError::NotAHeader(_))
        ));
        assert!(!scope.applies_to(StoreKind::Gcs));
    }
}
