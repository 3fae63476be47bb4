//! Who is calling: bearer tokens, Basic credentials for the Flight handshake, and what a
//! caller may touch. The tenant always comes from the credential.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine;
use chrono::{DateTime, Utc};
use tonic::metadata::MetadataMap;

use crate::clock::{Clock, SystemClock};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing credentials: send header `authorization: Bearer <token>` or do a Flight handshake with Basic tenant:token")]
    Missing,
    #[error("invalid credentials: the token is not known to this server (or was revoked)")]
    InvalidToken,
    #[error("the token expired at {0}; issue a new one (`lakeport token issue`)")]
    Expired(DateTime<Utc>),
    #[error("malformed authorization header: expected `Bearer <token>` or `Basic <base64 tenant:token>`")]
    Malformed,
    #[error("the token does not belong to tenant {0:?}")]
    WrongTenant(String),
    #[error("tenant {caller:?} may not access tenant {target:?}")]
    OtherTenant { caller: String, target: String },
    #[error("{action} is for admins: tenant {caller:?} may not run it (use the admin token)")]
    AdminOnly {
        action: &'static str,
        caller: String,
    },
    #[error("an admin must name the tenant: use descriptor path [tenant, dataset] (or db_schema for Flight SQL ingest)")]
    AdminNeedsTenant,
    #[error("a collector key only appends through the collector doors; use a tenant token (`lakeport token issue`) here")]
    KeyNotToken,
    #[error("invalid collector key: it is not known to this server (or was revoked); issue one with `lakeport key issue`")]
    InvalidKey,
    #[error("the collector key may not {0}")]
    KeyRefused(String),
}

/// What a collector key may do: append to `datasets`, from browsers on `origins` (any
/// origin when empty). Keys are public by design: they go into web pages and apps.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyScope {
    pub datasets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<String>,
}

impl KeyScope {
    /// Whether the key may append to `dataset` for a request from `origin` (a browser's
    /// `Origin`, or the origin of its `Referer`; none for apps and servers).
    pub fn allows(&self, dataset: &str, origin: Option<&str>) -> Result<(), AuthError> {
        if !self.datasets.iter().any(|d| d == dataset) {
            return Err(AuthError::KeyRefused(format!(
                "write to dataset {dataset:?}; it may write to: {}",
                self.datasets.join(", ")
            )));
        }
        match origin {
            Some(origin)
                if !self.origins.is_empty()
                    && !self
                        .origins
                        .iter()
                        .any(|o| o.trim_end_matches('/') == origin.trim_end_matches('/')) =>
            {
                Err(AuthError::KeyRefused(format!(
                    "be used from origin {origin:?}; its origins are: {}",
                    self.origins.join(", ")
                )))
            }
            _ => Ok(()),
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Tenant(String),
}

impl Principal {
    /// The tenant a request acts for: the caller's own, or the one an admin names.
    pub fn resolve_tenant(&self, requested: Option<&str>) -> Result<String, AuthError> {
        match (self, requested) {
            (Principal::Admin, Some(t)) => Ok(t.to_string()),
            (Principal::Admin, None) => Err(AuthError::AdminNeedsTenant),
            (Principal::Tenant(own), None) => Ok(own.clone()),
            (Principal::Tenant(own), Some(t)) if t == own => Ok(own.clone()),
            (Principal::Tenant(own), Some(t)) => Err(AuthError::OtherTenant {
                caller: own.clone(),
                target: t.to_string(),
            }),
        }
    }
}

/// A credential as configured: the token itself is never kept, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of_token(token: &str) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(token.as_bytes()).into())
    }

    /// A SHA-256 written as 64 hex characters; the error says what is wrong with it.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let bytes = hex::decode(text.trim()).map_err(|e| format!("not hex SHA-256: {e}"))?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "a SHA-256 is 64 hex characters".to_string())?;
        Ok(Self(array))
    }
}

/// The credentials callers are checked against beside the registry's tokens.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub admin_tokens: Vec<TokenHash>,
    /// Tenant id and its tokens.
    pub tenant_tokens: Vec<(String, Vec<TokenHash>)>,
}

impl Credentials {
    /// True when no credential at all is configured (open mode, loopback only).
    pub fn is_open(&self) -> bool {
        self.admin_tokens.is_empty() && self.tenant_tokens.iter().all(|(_, t)| t.is_empty())
    }
}

/// A token the tenant registry issued: live until it expires or is revoked (a revoked one
/// is simply not in the map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub tenant: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// Set for a collector key, which is no bearer token.
    pub scope: Option<KeyScope>,
}

/// Validates credentials against the configured token hashes and the registry's.
#[derive(Debug, Clone)]
pub struct Authenticator {
    by_hash: HashMap<[u8; 32], Principal>,
    issued: Arc<RwLock<HashMap<[u8; 32], IssuedToken>>>,
    clock: Arc<dyn Clock>,
    open: bool,
}

impl Authenticator {
    pub fn new(credentials: &Credentials) -> Self {
        let mut by_hash = HashMap::new();
        for (tenant, tokens) in &credentials.tenant_tokens {
            for TokenHash(hash) in tokens {
                by_hash.insert(*hash, Principal::Tenant(tenant.clone()));
            }
        }
        for TokenHash(hash) in &credentials.admin_tokens {
            by_hash.insert(*hash, Principal::Admin);
        }
        Self {
            by_hash,
            issued: Arc::default(),
            clock: Arc::new(SystemClock),
            open: credentials.is_open(),
        }
    }

    /// Judges token expiry by `clock` instead of the wall clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the registry's tokens (every refresh of the registry).
    pub fn set_issued(&self, tokens: HashMap<[u8; 32], IssuedToken>) {
        *self.issued.write().unwrap_or_else(|p| p.into_inner()) = tokens;
    }

    /// True when no token is configured: every caller is admin (loopback binds only).
    pub fn is_open(&self) -> bool {
        self.open
    }

    pub fn principal_for_token(&self, token: &str) -> Result<Principal, AuthError> {
        let hash = TokenHash::of_token(token).0;
        if let Some(principal) = self.by_hash.get(&hash) {
            return Ok(principal.clone());
        }
        let issued = self.issued.read().unwrap_or_else(|p| p.into_inner());
        match issued.get(&hash) {
            Some(IssuedToken {
                expires_at: Some(at),
                ..
            }) if *at <= self.clock.now() => Err(AuthError::Expired(*at)),
            Some(IssuedToken { scope: Some(_), .. }) => Err(AuthError::KeyNotToken),
            Some(token) => Ok(Principal::Tenant(token.tenant.clone())),
            None => Err(AuthError::InvalidToken),
        }
    }

    /// The tenant and scope of a collector key.
    pub fn collector_key(&self, key: &str) -> Result<(String, KeyScope), AuthError> {
        let hash = TokenHash::of_token(key).0;
        let issued = self.issued.read().unwrap_or_else(|p| p.into_inner());
        match issued.get(&hash) {
            Some(IssuedToken {
                expires_at: Some(at),
                ..
            }) if *at <= self.clock.now() => Err(AuthError::Expired(*at)),
            Some(IssuedToken {
                tenant,
                scope: Some(scope),
                ..
            }) => Ok((tenant.clone(), scope.clone())),
            _ => Err(AuthError::InvalidKey),
        }
    }

    /// Authenticates an RPC from its `authorization` header.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Principal, AuthError> {
        let header = metadata
            .get("authorization")
            .map(|v| v.to_str().map_err(|_| AuthError::Malformed))
            .transpose()?;
        match header {
            None if self.open => Ok(Principal::Admin),
            None => Err(AuthError::Missing),
            Some(value) => match parse_authorization(value)? {
                Credential::Bearer(token) => self.check_bearer(token),
                Credential::Basic { user, password } => {
                    self.check_basic(&user, &password).map(|(p, _)| p)
                }
            },
        }
    }

    fn check_bearer(&self, token: &str) -> Result<Principal, AuthError> {
        match self.principal_for_token(token) {
            Err(_) if self.open => Ok(Principal::Admin),
            other => other,
        }
    }

    /// Checks Basic `tenant:token` (or `anything:admin-token`) and returns the principal and
    /// the bearer token to hand back to the client.
    pub fn check_basic(
        &self,
        user: &str,
        password: &str,
    ) -> Result<(Principal, String), AuthError> {
        if self.open {
            return Ok((Principal::Admin, password.to_string()));
        }
        match self.principal_for_token(password)? {
            Principal::Admin => Ok((Principal::Admin, password.to_string())),
            Principal::Tenant(t) if t == user => Ok((Principal::Tenant(t), password.to_string())),
            Principal::Tenant(_) => Err(AuthError::WrongTenant(user.to_string())),
        }
    }

    /// Reads the Basic credentials of a handshake request.
    pub fn handshake(&self, metadata: &MetadataMap) -> Result<(Principal, String), AuthError> {
        let header = metadata
            .get("authorization")
            .map(|v| v.to_str().map_err(|_| AuthError::Malformed))
            .transpose()?;
        match header {
            None if self.open => Ok((Principal::Admin, String::new())),
            None => Err(AuthError::Missing),
            Some(value) => match parse_authorization(value)? {
                Credential::Basic { user, password } => self.check_basic(&user, &password),
                Credential::Bearer(token) => Ok((self.check_bearer(token)?, token.to_string())),
            },
        }
    }
}

/// Standard base64 with or without padding: the Go Flight client (ADBC) omits it.
const BASIC_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

enum Credential<'a> {
    Bearer(&'a str),
    Basic { user: String, password: String },
}

fn parse_authorization(value: &str) -> Result<Credential<'_>, AuthError> {
    let (scheme, rest) = value.trim().split_once(' ').ok_or(AuthError::Malformed)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Credential::Bearer(rest));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = BASIC_BASE64
            .decode(rest)
            .map_err(|_| AuthError::Malformed)?;
        let text = String::from_utf8(decoded).map_err(|_| AuthError::Malformed)?;
        let (user, password) = text.split_once(':').ok_or(AuthError::Malformed)?;
        return Ok(Credential::Basic {
            user: user.to_string(),
            password: password.to_string(),
        });
    }
    Err(AuthError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        Authenticator::new(&Credentials {
            admin_tokens: vec![TokenHash::of_token("root")],
            tenant_tokens: vec![(
                "acme".into(),
                vec![TokenHash::of_token("a1"), TokenHash::of_token("a2")],
            )],
        })
    }

    fn headers(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", value.parse().unwrap());
        m
    }

    #[test]
    fn bearer_tokens_map_to_principals() {
        let a = auth();
        assert_eq!(
            a.authenticate(&headers("Bearer a2")).unwrap(),
            Principal::Tenant("acme".into())
        );
        assert_eq!(
            a.authenticate(&headers("bearer root")).unwrap(),
            Principal::Admin
        );
        assert!(matches!(
            a.authenticate(&headers("Bearer nope")),
            Err(AuthError::InvalidToken)
        ));
        assert!(matches!(
            a.authenticate(&MetadataMap::new()),
            Err(AuthError::Missing)
        ));
        assert!(matches!(
            a.authenticate(&headers("Token x")),
            Err(AuthError::Malformed)
        ));
    }

    #[test]
    fn basic_must_name_the_tokens_tenant() {
        let a = auth();
        let basic = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        let (p, bearer) = a.handshake(&headers(&basic("acme:a1"))).unwrap();
        assert_eq!(
            (p, bearer.as_str()),
            (Principal::Tenant("acme".into()), "a1")
        );
        assert!(matches!(
            a.handshake(&headers(&basic("beta:a1"))),
            Err(AuthError::WrongTenant(_))
        ));
        assert_eq!(
            a.handshake(&headers(&basic("admin:root"))).unwrap().0,
            Principal::Admin
        );
        let unpadded = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode("acme:a1")
        );
        assert_eq!(
            a.handshake(&headers(&unpadded)).unwrap().0,
            Principal::Tenant("acme".into())
        );
    }

    #[test]
    fn issued_tokens_work_until_expired_or_replaced() {
        let a = auth();
        let hash = |t: &str| TokenHash::of_token(t).0;
        let past = Utc::now() - chrono::Duration::minutes(1);
        a.set_issued(HashMap::from([
            (
                hash("fresh"),
                IssuedToken {
                    tenant: "acme".into(),
                    expires_at: None,
                    scope: None,
                },
            ),
            (
                hash("stale"),
                IssuedToken {
                    tenant: "acme".into(),
                    expires_at: Some(past),
                    scope: None,
                },
            ),
        ]));
        assert_eq!(
            a.authenticate(&headers("Bearer fresh")).unwrap(),
            Principal::Tenant("acme".into())
        );
        assert!(matches!(
            a.authenticate(&headers("Bearer stale")),
            Err(AuthError::Expired(_))
        ));
        a.set_issued(HashMap::new());
        assert!(matches!(
            a.authenticate(&headers("Bearer fresh")),
            Err(AuthError::InvalidToken)
        ));
    }

    #[test]
    fn a_collector_key_is_no_token_and_keeps_to_its_scope() {
        let a = auth();
        let scope = KeyScope {
            datasets: vec!["snowplow".into()],
            origins: vec!["https://shop.example".into()],
        };
        a.set_issued(HashMap::from([(
            TokenHash::of_token("lpk_k").0,
            IssuedToken {
                tenant: "acme".into(),
                expires_at: None,
                scope: Some(scope.clone()),
            },
        )]));
        assert!(matches!(
            a.authenticate(&headers("Bearer lpk_k")),
            Err(AuthError::KeyNotToken)
        ));
        assert_eq!(
            a.collector_key("lpk_k").unwrap(),
            ("acme".into(), scope.clone())
        );
        assert!(matches!(
            a.collector_key("root"),
            Err(AuthError::InvalidKey)
        ));
        assert!(matches!(
            a.collector_key("nope"),
            Err(AuthError::InvalidKey)
        ));
        assert!(scope.allows("snowplow", None).is_ok());
        assert!(scope
            .allows("snowplow", Some("https://shop.example/"))
            .is_ok());
        assert!(scope
            .allows("snowplow", Some("https://evil.example"))
            .is_err());
        assert!(scope.allows("cloudevents", None).is_err());
    }

    #[test]
    fn tenants_resolve_only_to_themselves() {
        let t = Principal::Tenant("acme".into());
        assert_eq!(t.resolve_tenant(None).unwrap(), "acme");
        assert_eq!(t.resolve_tenant(Some("acme")).unwrap(), "acme");
        assert!(matches!(
            t.resolve_tenant(Some("beta")),
            Err(AuthError::OtherTenant { .. })
        ));
        assert!(matches!(
            Principal::Admin.resolve_tenant(None),
            Err(AuthError::AdminNeedsTenant)
        ));
    }
}
