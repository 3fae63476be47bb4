//! Collector doors: events per second, latency to the durable 200 and server CPU per 1,000
//! events for (a) OTLP/HTTP protobuf log batches of 100 records and (b) Snowplow tp2 POSTs
//! of 10 events, from 8 and 64 concurrent clients, each against the same rows sent through
//! Flight DoPut (one DoPut per request, waiting for its ack) in the same run. Every client
//! sends its next request when the previous one is answered (a closed loop), so the
//! throughput is what the server sustains at that concurrency.
//!
//! `cargo build --release --workspace --bins && target/release/collectors [REQUESTS_PER_CLIENT]`.

#[path = "common.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use bytes::Bytes;
use common::{first_arg_or, quantile, BenchServer};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use lakeport_client::Client;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

const TENANT: &str = "bench";
const OTLP_RECORDS: usize = 100;
const SNOWPLOW_EVENTS: usize = 10;
/// 2024-05-01T10:00Z in microseconds: every request lands in one hour per app.
const HOUR_US: i64 = 1_714_557_600_000_000;

type Http = HttpClient<HttpConnector, Full<Bytes>>;
/// Makes request `n` of client `c`.
type MakeRequest = fn(usize, usize) -> anyhow::Result<Request>;

/// One request's worth of events, as each door takes it.
#[derive(Clone)]
struct Request {
    http_path: &'static str,
    content_type: &'static str,
    body: Bytes,
    dataset: &'static str,
    batch: RecordBatch,
    events: usize,
}

fn text(value: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(value.to_string())),
    }
}

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(text(value)),
        ..Default::default()
    }
}

/// 100 log records of one service, as OTLP protobuf and as the `otel_logs` rows the door
/// makes of them.
fn otlp_request(client: usize, n: usize) -> anyhow::Result<Request> {
    let service = format!("svc-{}", client % 4);
    let times: Vec<i64> = (0..OTLP_RECORDS)
        .map(|i| HOUR_US + ((n * OTLP_RECORDS + i) as i64 % 3_600_000_000))
        .collect();
    let records: Vec<LogRecord> = times
        .iter()
        .enumerate()
        .map(|(i, us)| LogRecord {
            time_unix_nano: (*us as u64) * 1000,
            observed_time_unix_nano: (*us as u64) * 1000,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(text(&format!("request {n}/{i} served in {} ms", i % 97))),
            attributes: vec![
                attribute("http.route", "/api/orders"),
                attribute("http.method", "GET"),
                attribute("user.id", &format!("u-{}", (n * 31 + i) % 1000)),
            ],
            trace_id: vec![(i % 256) as u8; 16],
            span_id: vec![(n % 256) as u8; 8],
            ..Default::default()
        })
        .collect();
    let export = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![attribute("service.name", &service)],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "bench".into(),
                    version: "1".into(),
                    ..Default::default()
                }),
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let ts = |v: &[i64]| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(v.to_vec()).with_timezone("UTC"))
    };
    let strings = |f: &dyn Fn(usize) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values((0..OTLP_RECORDS).map(f)))
    };
    let batch = RecordBatch::try_from_iter([
        ("time", ts(&times)),
        ("observed_time", ts(&times)),
        ("service_name", strings(&|_| service.clone())),
        (
            "severity_number",
            Arc::new(Int32Array::from(vec![9; OTLP_RECORDS])) as ArrayRef,
        ),
        ("severity_text", strings(&|_| "INFO".into())),
        (
            "body",
            strings(&|i| format!("request {n}/{i} served in {} ms", i % 97)),
        ),
        (
            "trace_id",
            strings(&|i| format!("{:02x}", i % 256).repeat(16)),
        ),
        (
            "span_id",
            strings(&|_| format!("{:02x}", n % 256).repeat(8)),
        ),
        (
            "attributes",
            strings(&|i| {
                format!(
                    r#"{{"http.route":"/api/orders","http.method":"GET","user.id":"u-{}"}}"#,
                    (n * 31 + i) % 1000
                )
            }),
        ),
        (
            "resource_attributes",
            strings(&|_| format!(r#"{{"service.name":"{service}"}}"#)),
        ),
        ("scope_name", strings(&|_| "bench".into())),
        ("scope_version", strings(&|_| "1".into())),
    ])?;
    Ok(Request {
        http_path: "/v1/logs",
        content_type: "application/x-protobuf",
        body: export.encode_to_vec().into(),
        dataset: "otel_logs",
        batch,
        events: OTLP_RECORDS,
    })
}

/// 10 page views as a tp2 POST body and as the `snowplow` rows they map to.
fn snowplow_request(client: usize, n: usize) -> anyhow::Result<Request> {
    let app = format!("app-{}", client % 4);
    let ids: Vec<String> = (0..SNOWPLOW_EVENTS)
        .map(|i| {
            let v = ((client as u128) << 64) | ((n * SNOWPLOW_EVENTS + i) as u128);
            uuid_text(v)
        })
        .collect();
    let dtm = 1_714_557_600_000_i64 + n as i64;
    let events: Vec<serde_json::Value> = ids
        .iter()
        .enumerate()
        .map(|(i, eid)| {
            serde_json::json!({
                "e": "pv", "eid": eid, "aid": app, "p": "web", "tv": "js-3.0.0",
                "url": format!("https://shop.example/p/{}?ref=mail", i % 50),
                "page": "Product", "dtm": dtm.to_string(), "stm": dtm.to_string(),
                "duid": format!("d-{client}"), "res": "1920x1080", "lang": "en-GB",
            })
        })
        .collect();
    let body = serde_json::json!({
        "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
        "data": events,
    });
    let strings = |f: &dyn Fn(usize) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values((0..SNOWPLOW_EVENTS).map(f)))
    };
    let now = chrono::Utc::now().timestamp_micros();
    let batch = RecordBatch::try_from_iter([
        ("app_id", strings(&|_| app.clone())),
        ("platform", strings(&|_| "web".into())),
        (
            "collector_tstamp",
            Arc::new(
                TimestampMicrosecondArray::from(vec![now; SNOWPLOW_EVENTS]).with_timezone("UTC"),
            ) as ArrayRef,
        ),
        (
            "dvce_created_tstamp",
            Arc::new(
                TimestampMicrosecondArray::from(vec![dtm * 1000; SNOWPLOW_EVENTS])
                    .with_timezone("UTC"),
            ) as ArrayRef,
        ),
        ("event", strings(&|_| "page_view".into())),
        ("event_id", strings(&|i| ids[i].clone())),
        ("v_tracker", strings(&|_| "js-3.0.0".into())),
        ("domain_userid", strings(&|_| format!("d-{client}"))),
        (
            "page_url",
            strings(&|i| format!("https://shop.example/p/{}?ref=mail", i % 50)),
        ),
        ("page_title", strings(&|_| "Product".into())),
        ("br_lang", strings(&|_| "en-GB".into())),
        (
            "dvce_screenwidth",
            Arc::new(Int32Array::from(vec![1920; SNOWPLOW_EVENTS])) as ArrayRef,
        ),
        (
            "dvce_screenheight",
            Arc::new(Int32Array::from(vec![1080; SNOWPLOW_EVENTS])) as ArrayRef,
        ),
    ])?;
    Ok(Request {
        http_path: "/com.snowplowanalytics.snowplow/tp2",
        content_type: "application/json; charset=utf-8",
        body: serde_json::to_vec(&body)?.into(),
        dataset: "snowplow",
        batch,
        events: SNOWPLOW_EVENTS,
    })
}

fn uuid_text(v: u128) -> String {
    let h = format!("{v:032x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Path {
    Http,
    Flight,
}

/// What one run measured.
struct Run {
    events: usize,
    secs: f64,
    cpu_secs: f64,
    latencies: Vec<Duration>,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.events as f64 / self.secs
    }

    fn cpu_per_thousand_ms(&self) -> f64 {
        self.cpu_secs * 1000.0 / self.events as f64 * 1000.0
    }

    fn ms(&self, q: f64) -> f64 {
        quantile(&self.latencies, q).as_secs_f64() * 1000.0
    }
}

/// The server's user + system CPU seconds so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

async fn run(
    server: &BenchServer,
    collector: &str,
    path: Path,
    clients: usize,
    per_client: usize,
    make: MakeRequest,
) -> anyhow::Result<Run> {
    let requests: Vec<Vec<Request>> = (0..clients)
        .map(|c| (0..per_client).map(|n| make(c, n)).collect())
        .collect::<anyhow::Result<_>>()?;
    let events: usize = requests.iter().flatten().map(|r| r.events).sum();
    let http: Http = HttpClient::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let cpu_before = cpu_seconds(server.process.id());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mine in requests {
        let (http, endpoint, collector) =
            (http.clone(), server.endpoint.clone(), collector.to_string());
        tasks.push(tokio::spawn(async move {
            let mut flight = match path {
                Path::Flight => Some(Client::connect(&endpoint).await?),
                Path::Http => None,
            };
            let mut latencies = Vec::with_capacity(mine.len());
            for request in mine {
                let sent = Instant::now();
                match &mut flight {
                    Some(client) => {
                        let acks = client
                            .put(Some(TENANT), request.dataset, vec![request.batch])
                            .await?;
                        let rows: u64 = acks.iter().map(|a| a.rows_committed).sum();
                        anyhow::ensure!(rows == request.events as u64, "DoPut committed {rows}");
                    }
                    None => {
                        let call =
                            hyper::Request::post(format!("{collector}{}", request.http_path))
                                .header("content-type", request.content_type)
                                .header("x-lakeport-tenant", TENANT)
                                .body(Full::new(request.body))?;
                        let answer = http.request(call).await?;
                        anyhow::ensure!(
                            answer.status() == 200,
                            "{} answered {}",
                            request.http_path,
                            answer.status()
                        );
                    }
                }
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    latencies.sort();
    Ok(Run {
        events,
        secs,
        cpu_secs: cpu_seconds(server.process.id()) - cpu_before,
        latencies,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let per_client = first_arg_or(100)?;
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let listen = format!("127.0.0.1:{port}");
    let server = BenchServer::start(dir.path(), &["--collector-listen", &listen]).await?;
    let collector = format!("http://{listen}");
    // Warm-up: every table exists before anything is timed.
    for make in [otlp_request, snowplow_request] {
        for path in [Path::Http, Path::Flight] {
            run(&server, &collector, path, 4, 2, make).await?;
        }
    }

    println!("collector doors vs Flight DoPut, the same rows, {per_client} requests per client");
    println!(
        "{:<28} {:>8} {:>11} {:>9} {:>9} {:>14} {:>12}",
        "case", "clients", "events/s", "p50 ms", "p99 ms", "CPU ms/1k ev", "HTTP/Flight"
    );
    let cases: [(&str, MakeRequest); 2] = [
        ("OTLP/HTTP logs x100", otlp_request),
        ("Snowplow tp2 x10", snowplow_request),
    ];
    for (name, make) in cases {
        for clients in [8, 64] {
            let door = run(&server, &collector, Path::Http, clients, per_client, make).await?;
            let flight = run(&server, &collector, Path::Flight, clients, per_client, make).await?;
            for (label, r, ratio) in [
                (
                    name.to_string(),
                    &door,
                    Some(flight.per_second() / door.per_second()),
                ),
                ("  same rows via DoPut".to_string(), &flight, None),
            ] {
                println!(
                    "{:<28} {:>8} {:>11.0} {:>9.1} {:>9.1} {:>14.1} {:>12}",
                    label,
                    clients,
                    r.per_second(),
                    r.ms(0.5),
                    r.ms(0.99),
                    r.cpu_per_thousand_ms(),
                    ratio.map_or(String::new(), |x| format!("{x:.2}x")),
                );
            }
        }
    }
    println!(
        "HTTP/Flight: time per row through the door over time per row through DoPut (goal <= 1.5x)"
    );
    Ok(())
}
