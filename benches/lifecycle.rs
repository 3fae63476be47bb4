//! Archive and restore of a tenant, on the local store and on S3 (moto on loopback), in two
//! shapes: many small files (8 puts over 7 days of hour partitions and 4 apps) and a bulk
//! load (few large files in one hour). For each, in one run:
//!
//! - the limit: a plain object_store copy of the same objects in this process (every
//!   object read whole and written, 4 at once, as lakeport copies), live → archive and
//!   back;
//! - `tenant.archive`: copy, verify, record, delete the live copy (goal: throughput >= 0.8
//!   of the limit's);
//! - restore on first touch: the time from a query on the archived tenant to its answer
//!   (time-to-first-query), as throughput against the limit's copy back.
//!
//! The archive waits two registry refreshes between its steps (so that every replica has
//! seen each one); the server runs with `registry_refresh = 50ms`, so that fixed cost is
//! small here and the ratios measure the copying.
//!
//! `target/release/lifecycle [ROWS] [S3_ROWS]`: rows per shape on the local store (default
//! 12,000,000, about 430 MiB; 30M is about 1 GiB) and on S3 (default: ROWS; moto takes
//! minutes per GiB). S3 needs the test venv's moto (`LAKEPORT_CACHE`).

#[path = "common.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use common::{first_arg_or, snowplow_batches_of_apps, BenchServer};
use futures::{StreamExt, TryStreamExt};
use lakeport_client::Client;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

const ADMIN: &str = "bench-admin";
const AT_ONCE: usize = 4;
/// The archive's fixed waits for other replicas: 2 x 2 x `registry_refresh` (50 ms).
const REPLICA_WAITS: f64 = 0.2;

/// A data shape: a tenant, how its rows are spread, and how many puts bring them.
struct Shape {
    tenant: &'static str,
    token: &'static str,
    hours: i64,
    apps: usize,
    puts: usize,
}

const SHAPES: [Shape; 2] = [
    Shape {
        tenant: "hourly",
        token: "token-hourly",
        hours: 24 * 7,
        apps: 4,
        puts: 8,
    },
    Shape {
        tenant: "bulk",
        token: "token-bulk",
        hours: 1,
        apps: 1,
        puts: 1,
    },
];

/// Where the live and archive stores are, for the server's config and this process.
struct Stores {
    lake: String,
    /// The lake's directory within `live` (the bucket's root for S3).
    root: &'static str,
    archive_url: String,
    live: Arc<dyn ObjectStore>,
    archive: Arc<dyn ObjectStore>,
    env: Vec<(&'static str, String)>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows = first_arg_or(12_000_000)?;
    let s3_rows = match std::env::args().nth(2) {
        Some(text) => text.parse()?,
        None => rows,
    };
    let dir = tempfile::tempdir()?;
    let local = {
        let (lake, archive) = (dir.path().join("lake"), dir.path().join("archive"));
        std::fs::create_dir_all(&lake)?;
        std::fs::create_dir_all(&archive)?;
        Stores {
            lake: lake.to_string_lossy().into_owned(),
            root: "",
            archive_url: archive.to_string_lossy().into_owned(),
            live: Arc::new(object_store::local::LocalFileSystem::new_with_prefix(
                &lake,
            )?),
            archive: Arc::new(object_store::local::LocalFileSystem::new_with_prefix(
                &archive,
            )?),
            env: Vec::new(),
        }
    };
    run("local", &local, dir.path(), rows).await?;
    match common::bench_python() {
        Some(python) => {
            let moto = common::Moto::start(&python).await?;
            moto.bucket("bench").await?;
            moto.bucket("bench-archive").await?;
            let s3 = |bucket: &str| -> anyhow::Result<Arc<dyn ObjectStore>> {
                Ok(Arc::new(
                    object_store::aws::AmazonS3Builder::new()
                        .with_endpoint(&moto.endpoint)
                        .with_allow_http(true)
                        .with_access_key_id("bench")
                        .with_secret_access_key("bench")
                        .with_region("us-east-1")
                        .with_bucket_name(bucket)
                        .build()?,
                ))
            };
            let stores = Stores {
                lake: "s3://bench/lake".into(),
                root: "lake",
                archive_url: "s3://bench-archive/lake".into(),
                live: s3("bench")?,
                archive: s3("bench-archive")?,
                env: moto.env(),
            };
            run("s3 (moto)", &stores, dir.path(), s3_rows).await?;
        }
        None => println!("s3: skipped (no test venv with moto; set LAKEPORT_CACHE)"),
    }
    Ok(())
}

async fn run(
    name: &str,
    stores: &Stores,
    dir: &std::path::Path,
    rows: usize,
) -> anyhow::Result<()> {
    let config = dir.join(format!("lifecycle-{}.toml", name.len()));
    std::fs::write(
        &config,
        format!(
            "registry_refresh = \"50ms\"\nrestore_wait = \"10m\"\n\n[stores.archive]\nurl = {:?}\narchive_for = \"default\"\n",
            stores.archive_url
        ),
    )?;
    let mut flags: Vec<String> = vec![
        "--config".into(),
        config.to_string_lossy().into_owned(),
        "--admin-token".into(),
        ADMIN.into(),
        "--maintenance-interval".into(),
        "0s".into(),
    ];
    for shape in &SHAPES {
        flags.push("--tenant".into());
        flags.push(format!("{}={}", shape.tenant, shape.token));
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = BenchServer::start_on(dir, &stores.lake, &flags, &stores.env).await?;
    for shape in &SHAPES {
        load(&server, shape, rows).await?;
        let tenant = Path::from(stores.root).join(format!("tenant_id={}", shape.tenant));
        let (objects, bytes) = listing(stores.live.as_ref(), &tenant).await?;
        let scratch = Path::from(format!("scratch/{}", shape.tenant));
        let out = plain_copy(&stores.live, &stores.archive, &tenant, &scratch).await?;
        let back = plain_copy(&stores.archive, &stores.live, &scratch, &scratch).await?;
        remove(stores.archive.as_ref(), &scratch).await?;
        remove(stores.live.as_ref(), &scratch).await?;

        let mut admin = Client::connect(&server.endpoint).await?.with_token(ADMIN);
        let start = Instant::now();
        admin.tenant_archive(shape.tenant).await?;
        let archive_secs = start.elapsed().as_secs_f64();
        let mut client = Client::connect(&server.endpoint)
            .await?
            .with_token(shape.token);
        let start = Instant::now();
        let counted = count(&mut client).await?;
        let restore_secs = start.elapsed().as_secs_f64();
        anyhow::ensure!(
            counted == rows as i64,
            "{counted} rows after the restore, not {rows}"
        );
        let mib = bytes as f64 / (1 << 20) as f64;
        println!(
            "{name}, {}: {objects} objects, {mib:.0} MiB. plain copy out {out:.2} s, back {back:.2} s",
            shape.tenant
        );
        // The archive waits two registry refreshes twice (50 ms each here) so that every
        // replica sees each step: a fixed cost, shown apart from the copying.
        let copying_secs = archive_secs - REPLICA_WAITS;
        println!(
            "  archive {archive_secs:.2} s ({:.0} MiB/s), throughput ratio to the plain copy {:.2} (goal >= 0.8); without the {REPLICA_WAITS:.1} s of waits for other replicas {:.2}",
            mib / archive_secs,
            out / archive_secs,
            out / copying_secs
        );
        println!(
            "  restore on first query: time-to-first-query {restore_secs:.2} s ({:.0} MiB/s), throughput ratio to the plain copy back {:.2}",
            mib / restore_secs,
            back / restore_secs
        );
    }
    Ok(())
}

/// Loads `rows` rows of the shape in its puts.
async fn load(server: &BenchServer, shape: &Shape, rows: usize) -> anyhow::Result<()> {
    let mut client = Client::connect(&server.endpoint)
        .await?
        .with_token(shape.token);
    for put in 0..shape.puts {
        let share = rows / shape.puts + usize::from(put < rows % shape.puts);
        let batches = snowplow_batches_of_apps(share, shape.hours, shape.apps);
        let batches: Vec<RecordBatch> = batches
            .into_iter()
            .map(|b| relabel(b, put))
            .collect::<anyhow::Result<_>>()?;
        client.put(None, "snowplow", batches).await?;
    }
    Ok(())
}

/// Gives the event ids of put `put` a prefix of their own (the generator repeats itself).
fn relabel(batch: RecordBatch, put: usize) -> anyhow::Result<RecordBatch> {
    let index = batch.schema().index_of("event_id")?;
    let ids = batch.column(index).as_string::<i32>();
    let ids: arrow::array::StringArray = ids
        .iter()
        .map(|id| id.map(|id| format!("p{put}-{id}")))
        .collect();
    let mut columns = batch.columns().to_vec();
    columns[index] = Arc::new(ids);
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

async fn count(client: &mut Client) -> anyhow::Result<i64> {
    let (_, stream) = client.query("SELECT count(*) FROM snowplow").await?;
    let batches: Vec<RecordBatch> = stream.try_collect().await?;
    Ok(batches[0].column(0).as_primitive::<Int64Type>().value(0))
}

async fn listing(store: &dyn ObjectStore, prefix: &Path) -> anyhow::Result<(usize, u64)> {
    let objects: Vec<_> = store.list(Some(prefix)).try_collect().await?;
    Ok((objects.len(), objects.iter().map(|o| o.size).sum()))
}

/// Copies every object under `from` (in `source`) to the same relative path under `to`
/// (in `target`), each read whole and written with one put, `AT_ONCE` at a time; seconds.
async fn plain_copy(
    source: &Arc<dyn ObjectStore>,
    target: &Arc<dyn ObjectStore>,
    from: &Path,
    to: &Path,
) -> anyhow::Result<f64> {
    let objects: Vec<_> = source.list(Some(from)).try_collect().await?;
    let skip = from.parts().count();
    let start = Instant::now();
    futures::stream::iter(objects)
        .map(|meta| async move {
            let relative: Vec<_> = meta.location.parts().skip(skip).collect();
            let to = relative
                .into_iter()
                .fold(to.clone(), |path, part| path.join(part));
            let bytes = source.get(&meta.location).await?.bytes().await?;
            target.put(&to, bytes.into()).await?;
            anyhow::Ok(())
        })
        .buffer_unordered(AT_ONCE)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(start.elapsed().as_secs_f64())
}

async fn remove(store: &dyn ObjectStore, prefix: &Path) -> anyhow::Result<()> {
    let objects: Vec<_> = store.list(Some(prefix)).try_collect().await?;
    for meta in objects {
        store.delete(&meta.location).await?;
    }
    Ok(())
}
