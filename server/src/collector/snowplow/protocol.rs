//! The Snowplow tracker protocol, one event's parameters to one row of `snowplow` (the
//! enriched-event columns a collector and enrich would fill without external lookups).
//! Pure: no I/O; a malformed event is an `Err` naming the parameter at fault.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use url::Url;

/// What the collector knows of the request an event came in.
#[derive(Debug, Clone, Default)]
pub(super) struct Arrival {
    /// Microseconds since 1970.
    pub(super) collector_tstamp: i64,
    pub(super) ip: Option<String>,
    pub(super) useragent: Option<String>,
    pub(super) network_userid: Option<String>,
}

pub(super) const V_COLLECTOR: &str = concat!("lakeport-", env!("CARGO_PKG_VERSION"));

/// One row of `snowplow` (columns left out are null).
#[derive(Debug, Default, PartialEq, Serialize)]
pub(super) struct SnowplowRow {
    pub(super) app_id: Option<String>,
    pub(super) platform: Option<String>,
    pub(super) etl_tstamp: i64,
    pub(super) collector_tstamp: i64,
    pub(super) dvce_created_tstamp: Option<i64>,
    pub(super) event: String,
    pub(super) event_id: String,
    pub(super) txn_id: Option<i32>,
    pub(super) name_tracker: Option<String>,
    pub(super) v_tracker: Option<String>,
    pub(super) v_collector: &'static str,
    pub(super) v_etl: &'static str,
    pub(super) user_id: Option<String>,
    pub(super) user_ipaddress: Option<String>,
    pub(super) user_fingerprint: Option<String>,
    pub(super) domain_userid: Option<String>,
    pub(super) domain_sessionidx: Option<i32>,
    pub(super) network_userid: Option<String>,
    pub(super) page_url: Option<String>,
    pub(super) page_title: Option<String>,
    pub(super) page_referrer: Option<String>,
    pub(super) page_urlscheme: Option<String>,
    pub(super) page_urlhost: Option<String>,
    pub(super) page_urlport: Option<i32>,
    pub(super) page_urlpath: Option<String>,
    pub(super) page_urlquery: Option<String>,
    pub(super) page_urlfragment: Option<String>,
    pub(super) refr_urlscheme: Option<String>,
    pub(super) refr_urlhost: Option<String>,
    pub(super) refr_urlport: Option<i32>,
    pub(super) refr_urlpath: Option<String>,
    pub(super) refr_urlquery: Option<String>,
    pub(super) refr_urlfragment: Option<String>,
    pub(super) mkt_medium: Option<String>,
    pub(super) mkt_source: Option<String>,
    pub(super) mkt_term: Option<String>,
    pub(super) mkt_content: Option<String>,
    pub(super) mkt_campaign: Option<String>,
    pub(super) se_category: Option<String>,
    pub(super) se_action: Option<String>,
    pub(super) se_label: Option<String>,
    pub(super) se_property: Option<String>,
    pub(super) se_value: Option<f64>,
    pub(super) tr_orderid: Option<String>,
    pub(super) tr_affiliation: Option<String>,
    pub(super) tr_total: Option<f64>,
    pub(super) tr_tax: Option<f64>,
    pub(super) tr_shipping: Option<f64>,
    pub(super) tr_city: Option<String>,
    pub(super) tr_state: Option<String>,
    pub(super) tr_country: Option<String>,
    pub(super) tr_currency: Option<String>,
    pub(super) ti_orderid: Option<String>,
    pub(super) ti_sku: Option<String>,
    pub(super) ti_name: Option<String>,
    pub(super) ti_category: Option<String>,
    pub(super) ti_price: Option<f64>,
    pub(super) ti_quantity: Option<i32>,
    pub(super) ti_currency: Option<String>,
    pub(super) pp_xoffset_min: Option<i32>,
    pub(super) pp_xoffset_max: Option<i32>,
    pub(super) pp_yoffset_min: Option<i32>,
    pub(super) pp_yoffset_max: Option<i32>,
    pub(super) useragent: Option<String>,
    pub(super) br_lang: Option<String>,
    pub(super) br_features_pdf: Option<bool>,
    pub(super) br_cookies: Option<bool>,
    pub(super) br_colordepth: Option<String>,
    pub(super) br_viewwidth: Option<i32>,
    pub(super) br_viewheight: Option<i32>,
    pub(super) os_timezone: Option<String>,
    pub(super) dvce_screenwidth: Option<i32>,
    pub(super) dvce_screenheight: Option<i32>,
    pub(super) doc_charset: Option<String>,
    pub(super) doc_width: Option<i32>,
    pub(super) doc_height: Option<i32>,
    pub(super) dvce_sent_tstamp: Option<i64>,
    pub(super) domain_sessionid: Option<String>,
    pub(super) derived_tstamp: i64,
    pub(super) event_vendor: String,
    pub(super) event_name: String,
    pub(super) event_format: String,
    pub(super) event_version: String,
    pub(super) true_tstamp: Option<i64>,
    pub(super) unstruct_event: Option<String>,
    pub(super) contexts: Option<String>,
}

/// An event's parameters, as the tracker sent them (`payload_data` or a query string).
pub(super) type Params = BTreeMap<String, String>;

/// The row of one event, or why it is malformed.
pub(super) fn event_row(params: &Params, arrival: &Arrival) -> Result<SnowplowRow, String> {
    let get = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
    let kind = get("e").ok_or("the event has no `e` (event type)")?;
    let (event, vendor, name) = match kind.as_str() {
        "pv" => ("page_view", "com.snowplowanalytics.snowplow", "page_view"),
        "pp" => ("page_ping", "com.snowplowanalytics.snowplow", "page_ping"),
        "se" => ("struct", "com.google.analytics", "event"),
        "ue" => ("unstruct", "", ""),
        "tr" => (
            "transaction",
            "com.snowplowanalytics.snowplow",
            "transaction",
        ),
        "ti" => (
            "transaction_item",
            "com.snowplowanalytics.snowplow",
            "transaction_item",
        ),
        other => {
            return Err(format!(
                "unknown event type e={other:?}; the tracker protocol has pv, pp, se, ue, tr, ti"
            ))
        }
    };
    let event_id = match get("eid") {
        Some(eid) => uuid::Uuid::parse_str(&eid)
            .map_err(|_| format!("eid {eid:?} is not a UUID"))?
            .to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let unstruct_event = self_describing(params, "ue_pr", "ue_px")?;
    let (event_vendor, event_name, event_format, event_version) = match kind.as_str() {
        "ue" => {
            let json = unstruct_event
                .as_ref()
                .ok_or("an unstruct event (e=ue) needs ue_pr or ue_px")?;
            let inner = json
                .get("data")
                .and_then(|d| d.get("schema"))
                .and_then(Value::as_str)
                .ok_or("the self-describing event has no data.schema")?;
            iglu_parts(inner)?
        }
        _ => (
            vendor.to_string(),
            name.to_string(),
            "jsonschema".to_string(),
            "1-0-0".to_string(),
        ),
    };
    let contexts = self_describing(params, "co", "cx")?;
    if let Some(c) = &contexts {
        if !c.get("data").is_some_and(Value::is_array) {
            return Err(
                "contexts (co/cx) must be self-describing JSON whose data is an array".into(),
            );
        }
    }

    let dvce_created = millis(params, "dtm")?;
    let dvce_sent = millis(params, "stm")?;
    let true_tstamp = millis(params, "ttm")?;
    let collector = arrival.collector_tstamp;
    // Snowplow's derived_tstamp: the device's clock corrected by how late it sent.
    let derived_tstamp = match (true_tstamp, dvce_created, dvce_sent) {
        (Some(t), _, _) => t,
        (None, Some(created), Some(sent)) => collector - (sent - created),
        _ => collector,
    };
    let page = get("url").map(|u| parse_url(&u, "url")).transpose()?;
    let refr = get("refr").map(|u| parse_url(&u, "refr")).transpose()?;
    let campaign = |key: &str| {
        page.as_ref().and_then(|url| {
            url.query_pairs()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
        })
    };
    let (page_parts, refr_parts) = (UrlParts::of(page.as_ref()), UrlParts::of(refr.as_ref()));
    let (dvce_screenwidth, dvce_screenheight) = dimensions(params, "res")?;
    let (br_viewwidth, br_viewheight) = dimensions(params, "vp")?;
    let (doc_width, doc_height) = dimensions(params, "ds")?;

    Ok(SnowplowRow {
        app_id: get("aid"),
        platform: get("p"),
        etl_tstamp: collector,
        collector_tstamp: collector,
        dvce_created_tstamp: dvce_created,
        event: event.to_string(),
        event_id,
        txn_id: int(params, "tid")?,
        name_tracker: get("tna"),
        v_tracker: get("tv"),
        v_collector: V_COLLECTOR,
        v_etl: V_COLLECTOR,
        user_id: get("uid"),
        user_ipaddress: get("ip").or_else(|| arrival.ip.clone()),
        user_fingerprint: get("fp"),
        domain_userid: get("duid"),
        domain_sessionidx: int(params, "vid")?,
        network_userid: get("tnuid")
            .or_else(|| get("nuid"))
            .or_else(|| arrival.network_userid.clone()),
        page_title: get("page"),
        page_referrer: get("refr"),
        mkt_medium: campaign("utm_medium"),
        mkt_source: campaign("utm_source"),
        mkt_term: campaign("utm_term"),
        mkt_content: campaign("utm_content"),
        mkt_campaign: campaign("utm_campaign"),
        page_urlscheme: page_parts.scheme,
        page_urlhost: page_parts.host,
        page_urlport: page_parts.port,
        page_urlpath: page_parts.path,
        page_urlquery: page_parts.query,
        page_urlfragment: page_parts.fragment,
        page_url: get("url"),
        refr_urlscheme: refr_parts.scheme,
        refr_urlhost: refr_parts.host,
        refr_urlport: refr_parts.port,
        refr_urlpath: refr_parts.path,
        refr_urlquery: refr_parts.query,
        refr_urlfragment: refr_parts.fragment,
        se_category: get("se_ca"),
        se_action: get("se_ac"),
        se_label: get("se_la"),
        se_property: get("se_pr"),
        se_value: float(params, "se_va")?,
        tr_orderid: get("tr_id"),
        tr_affiliation: get("tr_af"),
        tr_total: float(params, "tr_tt")?,
        tr_tax: float(params, "tr_tx")?,
        tr_shipping: float(params, "tr_sh")?,
        tr_city: get("tr_ci"),
        tr_state: get("tr_st"),
        tr_country: get("tr_co"),
        tr_currency: get("tr_cu"),
        ti_orderid: get("ti_id"),
        ti_sku: get("ti_sk"),
        ti_name: get("ti_nm").or_else(|| get("ti_na")),
        ti_category: get("ti_ca"),
        ti_price: float(params, "ti_pr")?,
        ti_quantity: int(params, "ti_qu")?,
        ti_currency: get("ti_cu"),
        pp_xoffset_min: int(params, "pp_mix")?,
        pp_xoffset_max: int(params, "pp_max")?,
        pp_yoffset_min: int(params, "pp_miy")?,
        pp_yoffset_max: int(params, "pp_may")?,
        useragent: get("ua").or_else(|| arrival.useragent.clone()),
        br_lang: get("lang"),
        br_features_pdf: flag(params, "f_pdf"),
        br_cookies: flag(params, "cookie"),
        br_colordepth: get("cd"),
        br_viewwidth,
        br_viewheight,
        os_timezone: get("tz"),
        dvce_screenwidth,
        dvce_screenheight,
        doc_charset: get("cs"),
        doc_width,
        doc_height,
        dvce_sent_tstamp: dvce_sent,
        domain_sessionid: get("sid"),
        derived_tstamp,
        event_vendor,
        event_name,
        event_format,
        event_version,
        true_tstamp,
        unstruct_event: unstruct_event.map(|v| v.to_string()),
        contexts: contexts.map(|v| v.to_string()),
    })
}

/// The parts of a URL as enrich reports them (the port defaulted from the scheme).
#[derive(Default)]
struct UrlParts {
    scheme: Option<String>,
    host: Option<String>,
    port: Option<i32>,
    path: Option<String>,
    query: Option<String>,
    fragment: Option<String>,
}

impl UrlParts {
    fn of(url: Option<&Url>) -> Self {
        let Some(url) = url else {
            return Self::default();
        };
        Self {
            scheme: Some(url.scheme().to_string()),
            host: url.host_str().map(str::to_string),
            port: url.port_or_known_default().map(i32::from),
            path: Some(url.path().to_string()),
            query: url.query().map(str::to_string),
            fragment: url.fragment().map(str::to_string),
        }
    }
}

fn parse_url(text: &str, param: &str) -> Result<Url, String> {
    Url::parse(text).map_err(|e| format!("{param} {text:?} is not a URL: {e}"))
}

/// Self-describing JSON given as text (`plain`) or base64url (`encoded`).
fn self_describing(params: &Params, plain: &str, encoded: &str) -> Result<Option<Value>, String> {
    let text = match (params.get(plain), params.get(encoded)) {
        (Some(text), _) if !text.is_empty() => text.clone(),
        (_, Some(b64)) if !b64.is_empty() => {
            let bytes = decode_base64(b64).ok_or_else(|| format!("{encoded} is not base64"))?;
            String::from_utf8(bytes).map_err(|_| format!("{encoded} is not UTF-8 JSON"))?
        }
        _ => return Ok(None),
    };
    let value: Value =
        serde_json::from_str(&text).map_err(|e| format!("{plain}/{encoded} is not JSON: {e}"))?;
    if !value.get("schema").is_some_and(Value::is_string) || value.get("data").is_none() {
        return Err(format!(
            "{plain}/{encoded} must be self-describing JSON: {{\"schema\": \"iglu:...\", \"data\": ...}}"
        ));
    }
    Ok(Some(value))
}

/// Trackers send base64url, with or without padding; some send standard base64.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode::Indifferent;
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(Indifferent);
    let url = GeneralPurpose::new(&base64::alphabet::URL_SAFE, config);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, config);
    url.decode(text.trim())
        .or_else(|_| standard.decode(text.trim()))
        .ok()
}

/// `iglu:vendor/name/format/version` in its four parts.
fn iglu_parts(uri: &str) -> Result<(String, String, String, String), String> {
    let parts: Vec<&str> = uri
        .strip_prefix("iglu:")
        .map(|rest| rest.split('/').collect())
        .unwrap_or_default();
    match parts.as_slice() {
        [vendor, name, format, version] if parts.iter().all(|p| !p.is_empty()) => Ok((
            vendor.to_string(),
            name.to_string(),
            format.to_string(),
            version.to_string(),
        )),
        _ => Err(format!(
            "schema {uri:?} is not an Iglu URI (iglu:vendor/name/format/version)"
        )),
    }
}

/// A parameter `parse` reads: `None` when absent or empty, an error naming what it should
/// be when `parse` cannot read it.
fn parsed<T>(
    params: &Params,
    name: &str,
    what: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, String> {
    match params.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => parse(text.trim())
            .map(Some)
            .ok_or_else(|| format!("{name} {text:?} is not {what}")),
    }
}

/// A timestamp in milliseconds since 1970, as microseconds.
fn millis(params: &Params, name: &str) -> Result<Option<i64>, String> {
    parsed(params, name, "milliseconds since 1970", |t| {
        t.parse::<i64>().ok()?.checked_mul(1000)
    })
}

fn int(params: &Params, name: &str) -> Result<Option<i32>, String> {
    parsed(params, name, "a 32-bit integer", |t| t.parse().ok())
}

fn float(params: &Params, name: &str) -> Result<Option<f64>, String> {
    parsed(params, name, "a number", |t| {
        t.parse::<f64>().ok().filter(|v| v.is_finite())
    })
}

fn flag(params: &Params, name: &str) -> Option<bool> {
    params.get(name).map(|v| v == "1" || v == "true")
}

/// `WIDTHxHEIGHT` as two integers.
fn dimensions(params: &Params, name: &str) -> Result<(Option<i32>, Option<i32>), String> {
    let Some(text) = params.get(name).filter(|v| !v.is_empty()) else {
        return Ok((None, None));
    };
    let bad = || format!("{name} {text:?} is not WIDTHxHEIGHT");
    let (w, h) = text.split_once('x').ok_or_else(bad)?;
    let w = w.trim().parse::<i32>().map_err(|_| bad())?;
    let h = h.trim().parse::<i32>().map_err(|_| bad())?;
    Ok((Some(w), Some(h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn arrival() -> Arrival {
        Arrival {
            collector_tstamp: 1_700_000_010_000_000,
            ip: Some("203.0.113.9".into()),
            useragent: Some("Mozilla/5.0".into()),
            network_userid: None,
        }
    }

    #[test]
    fn a_page_view_fills_the_page_columns_and_derives_its_timestamp() {
        let row = event_row(
            &params(&[
                ("e", "pv"),
                ("eid", "6c1a2e1c-0d7a-4a8e-9c0b-5b0c6a1f2d3e"),
                ("aid", "shop"),
                ("p", "web"),
                ("url", "https://shop.example/a/b?utm_source=news&x=1#top"),
                ("page", "Home"),
                ("refr", "http://search.example:8080/q"),
                ("res", "1920x1080"),
                ("vp", "800x600"),
                ("dtm", "1700000000000"),
                ("stm", "1700000004000"),
            ]),
            &arrival(),
        )
        .unwrap();
        assert_eq!(row.event, "page_view");
        assert_eq!(row.event_name, "page_view");
        assert_eq!(row.app_id.as_deref(), Some("shop"));
        assert_eq!(row.page_urlhost.as_deref(), Some("shop.example"));
        assert_eq!(row.page_urlport, Some(443));
        assert_eq!(row.page_urlpath.as_deref(), Some("/a/b"));
        assert_eq!(row.page_urlquery.as_deref(), Some("utm_source=news&x=1"));
        assert_eq!(row.page_urlfragment.as_deref(), Some("top"));
        assert_eq!(row.mkt_source.as_deref(), Some("news"));
        assert_eq!(row.refr_urlport, Some(8080));
        assert_eq!(
            (row.dvce_screenwidth, row.br_viewheight),
            (Some(1920), Some(600))
        );
        // Sent 4 s after it was created: derived = collector - 4 s.
        assert_eq!(row.derived_tstamp, 1_700_000_006_000_000);
        assert_eq!(row.user_ipaddress.as_deref(), Some("203.0.113.9"));
    }

    #[test]
    fn an_unstruct_event_takes_its_name_from_the_inner_schema() {
        let ue = r#"{"schema":"iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0","data":{"schema":"iglu:com.acme/signup/jsonschema/2-0-1","data":{"plan":"pro"}}}"#;
        let cx = r#"{"schema":"iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0","data":[{"schema":"iglu:com.acme/user/jsonschema/1-0-0","data":{"id":7}}]}"#;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ue);
        let row = event_row(
            &params(&[("e", "ue"), ("ue_px", &b64), ("co", cx)]),
            &arrival(),
        )
        .unwrap();
        assert_eq!(
            (
                row.event_vendor.as_str(),
                row.event_name.as_str(),
                row.event_version.as_str()
            ),
            ("com.acme", "signup", "2-0-1")
        );
        let stored: Value = serde_json::from_str(row.unstruct_event.as_deref().unwrap()).unwrap();
        assert_eq!(stored["data"]["data"]["plan"], "pro");
        assert!(row.contexts.unwrap().contains("com.acme/user"));
    }

    #[test]
    fn a_malformed_event_says_which_parameter_is_wrong() {
        let cases = [
            (params(&[("aid", "a")]), "no `e`"),
            (params(&[("e", "zz")]), "unknown event type"),
            (params(&[("e", "ue")]), "needs ue_pr or ue_px"),
            (
                params(&[("e", "ue"), ("ue_px", "%%%")]),
                "ue_px is not base64",
            ),
            (
                params(&[("e", "pv"), ("co", "{\"a\":1}")]),
                "self-describing",
            ),
            (params(&[("e", "se"), ("se_va", "lots")]), "se_va"),
            (params(&[("e", "pv"), ("dtm", "yesterday")]), "dtm"),
            (params(&[("e", "pv"), ("res", "big")]), "WIDTHxHEIGHT"),
            (params(&[("e", "pv"), ("eid", "not-a-uuid")]), "not a UUID"),
        ];
        for (event, expected) in cases {
            let reason = event_row(&event, &arrival()).unwrap_err();
            assert!(reason.contains(expected), "{reason:?} lacks {expected:?}");
        }
    }

    #[test]
    fn an_event_without_eid_gets_one() {
        let row = event_row(&params(&[("e", "se"), ("se_ca", "c")]), &arrival()).unwrap();
        assert!(uuid::Uuid::parse_str(&row.event_id).is_ok());
        assert_eq!(row.event_vendor, "com.google.analytics");
        assert_eq!(row.derived_tstamp, arrival().collector_tstamp);
    }
}
