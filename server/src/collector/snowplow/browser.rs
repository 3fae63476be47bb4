//! What a Snowplow collector learns from the request rather than the event: the client's
//! address (through trusted proxies only), the `network_userid` cookie, and the CORS
//! answers browsers need to send at all.

use std::net::{IpAddr, SocketAddr};

use axum::http::{header, HeaderMap, HeaderValue};
use chrono::Utc;

use crate::collector::CookieSettings;

/// The header with which a tracker asks not to be identified by the collector.
pub(super) const ANONYMOUS_HEADER: &str = "sp-anonymous";
/// The `network_userid` of an anonymous request.
const ANONYMOUS_ID: &str = "00000000-0000-0000-0000-000000000000";

/// The client's address: the peer, unless the peer is a trusted proxy, then the nearest
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub(super) fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.ip().to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in forwarded.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// Whether the tracker asked for an anonymous request.
pub(super) fn anonymous(headers: &HeaderMap) -> bool {
    headers.contains_key(ANONYMOUS_HEADER)
}

/// The `network_userid` for a request and the `Set-Cookie` to answer with: the cookie's
/// value when it has one, a new id otherwise; none when cookies are off, and the all-zero
/// id without a cookie for an anonymous request.
pub(super) fn network_userid(
    headers: &HeaderMap,
    cookie: Option<&CookieSettings>,
) -> (Option<String>, Option<HeaderValue>) {
    if anonymous(headers) {
        return (Some(ANONYMOUS_ID.to_string()), None);
    }
    let Some(settings) = cookie else {
        return (None, None);
    };
    let existing = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == settings.name)
        .and_then(|(_, value)| uuid::Uuid::parse_str(value.trim()).ok());
    let id = existing.unwrap_or_else(uuid::Uuid::new_v4).to_string();
    let expires = Utc::now()
        + chrono::Duration::from_std(settings.lifetime).unwrap_or(chrono::Duration::days(365));
    let mut text = format!(
        "{}={id}; Path=/; Max-Age={}; Expires={}; SameSite=None; Secure; HttpOnly",
        settings.name,
        settings.lifetime.as_secs(),
        expires.format("%a, %d %b %Y %H:%M:%S GMT"),
    );
    if let Some(domain) = &settings.domain {
        text.push_str(&format!("; Domain={domain}"));
    }
    (Some(id), HeaderValue::from_str(&text).ok())
}

/// CORS headers for a browser's request from `Origin`: the origin itself (not `*`) so the
/// browser sends and keeps the cookie.
pub(super) fn cors(headers: &HeaderMap, out: &mut HeaderMap) {
    let origin = headers
        .get(header::ORIGIN)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"));
    let credentials = origin != "*";
    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    if credentials {
        out.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        out.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// The answer to a CORS preflight.
pub(super) fn preflight(headers: &HeaderMap, out: &mut HeaderMap) {
    cors(headers, out);
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, GET, OPTIONS"),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "Content-Type, SP-Anonymous, Authorization, X-Lakeport-Key, X-Lakeport-Tenant",
        ),
    );
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("3600"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let headers = forwarded("198.51.100.1, 203.0.113.5, 10.1.1.1");
        let proxy: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let stranger: SocketAddr = "192.0.2.8:5000".parse().unwrap();
        // Through our proxies: the nearest untrusted hop (the one before is spoofable).
        assert_eq!(
            client_ip(proxy, &headers, &trusted).to_string(),
            "203.0.113.5"
        );
        assert_eq!(
            client_ip(stranger, &headers, &trusted).to_string(),
            "192.0.2.8"
        );
        assert_eq!(client_ip(proxy, &headers, &[]).to_string(), "10.0.0.2");
    }

    #[test]
    fn the_cookie_is_kept_renewed_or_withheld() {
        let settings = CookieSettings {
            name: "sp".into(),
            domain: Some(".shop.example".into()),
            lifetime: std::time::Duration::from_secs(3600),
        };
        let id = "6c1a2e1c-0d7a-4a8e-9c0b-5b0c6a1f2d3e";
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; sp={id}")).unwrap(),
        );
        let (kept, set) = network_userid(&headers, Some(&settings));
        assert_eq!(kept.as_deref(), Some(id));
        let set = set.unwrap();
        assert!(set.to_str().unwrap().contains("Domain=.shop.example"));
        let (fresh, _) = network_userid(&HeaderMap::new(), Some(&settings));
        assert!(fresh.is_some_and(|f| f != id));
        assert_eq!(network_userid(&HeaderMap::new(), None), (None, None));
        headers.insert(ANONYMOUS_HEADER, HeaderValue::from_static("*"));
        let (anonymous, set) = network_userid(&headers, Some(&settings));
        assert_eq!(anonymous.as_deref(), Some(ANONYMOUS_ID));
        assert!(set.is_none());
    }
}
