//! The object store a table writes through: forwards every call and counts what each
//! write or delete adds to or takes from the table's bytes, so usage is current without
//! listing. Overwrites and deletes look at the object first (a HEAD) to know its size.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyMode, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
    RenameOptions, Result, UploadPart,
};

use super::UsageLedger;
use crate::lake::metrics;

/// Which table a metered store counts for.
#[derive(Debug)]
pub struct TableMeter {
    pub tenant: String,
    pub dataset: String,
    /// The store the table lives in (labels its failed requests).
    pub store: String,
    ledger: Arc<UsageLedger>,
}

impl TableMeter {
    pub fn new(tenant: &str, dataset: &str, store: &str, ledger: Arc<UsageLedger>) -> Arc<Self> {
        Arc::new(Self {
            tenant: tenant.to_string(),
            dataset: dataset.to_string(),
            store: store.to_string(),
            ledger,
        })
    }

    /// A completed object: data files also count as files written.
    fn wrote(&self, location: &Path, bytes: i64) {
        let name = location.as_ref();
        if name.ends_with(".parquet") && !name.contains("_delta_log/") {
            metrics::data_file_written(&self.tenant, &self.dataset, bytes.max(0) as u64);
        }
    }

    /// Passes `result` on, counting a failure against the store.
    fn seen<T>(&self, operation: &'static str, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            metrics::store_request_failed(&self.store, operation, e);
        }
        result
    }

    fn add(&self, bytes: i64, objects: i64) {
        if bytes != 0 || objects != 0 {
            self.ledger
                .record(&self.tenant, &self.dataset, bytes, objects);
        }
    }

    /// A commit of this process added `rows` at `at`.
    pub fn committed(&self, rows: i64, at: chrono::DateTime<chrono::Utc>) {
        self.ledger.committed(&self.tenant, &self.dataset, rows, at);
    }
}

#[derive(Debug)]
pub struct MeteredStore {
    inner: Arc<dyn ObjectStore>,
    meter: Arc<TableMeter>,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn ObjectStore>, meter: Arc<TableMeter>) -> Self {
        Self { inner, meter }
    }

    /// The size of the object at `location`, or `None` when there is none.
    async fn size_of(&self, location: &Path) -> Result<Option<i64>> {
        match self.inner.head(location).await {
            Ok(meta) => Ok(Some(meta.size as i64)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl std::fmt::Display for MeteredStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Metered({})", self.inner)
    }
}

#[tonic::async_trait]
impl ObjectStore for MeteredStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let size = payload.content_length() as i64;
        let replaced = match opts.mode {
            PutMode::Create => None,
            PutMode::Overwrite | PutMode::Update(_) => {
                self.meter.seen("head", self.size_of(location).await)?
            }
        };
        let result = self
            .meter
            .seen("put", self.inner.put_opts(location, payload, opts).await)?;
        self.meter.wrote(location, size);
        match replaced {
            Some(old) => self.meter.add(size - old, 0),
            None => self.meter.add(size, 1),
        }
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let inner = self.meter.seen(
            "put_multipart",
            self.inner.put_multipart_opts(location, opts).await,
        )?;
        Ok(Box::new(MeteredUpload {
            inner,
            location: location.clone(),
            bytes: 0,
            meter: self.meter.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.meter
            .seen("get", self.inner.get_opts(location, options).await)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.meter
            .seen("get", self.inner.get_ranges(location, ranges).await)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        // Each object's size is read before it is deleted, and counted once it is gone.
        let sizes: Arc<Mutex<HashMap<Path, i64>>> = Arc::default();
        let (inner, recorded) = (self.inner.clone(), sizes.clone());
        let sized = locations
            .then(move |location| {
                let (inner, recorded) = (inner.clone(), recorded.clone());
                async move {
                    let location = location?;
                    if let Ok(meta) = inner.head(&location).await {
                        recorded
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(location.clone(), meta.size as i64);
                    }
                    Ok(location)
                }
            })
            .boxed();
        let meter = self.meter.clone();
        self.inner
            .delete_stream(sized)
            .inspect(move |deleted| {
                if let Err(e) = deleted {
                    metrics::store_request_failed(&meter.store, "delete", e);
                }
                if let Ok(location) = deleted {
                    let size = sizes
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(location);
                    if let Some(size) = size {
                        meter.add(-size, -1);
                    }
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.meter
            .seen("list", self.inner.list_with_delimiter(prefix).await)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let size = self.size_of(from).await?.unwrap_or(0);
        let replaced = match options.mode {
            CopyMode::Create => None,
            CopyMode::Overwrite => self.size_of(to).await?,
        };
        self.meter
            .seen("copy", self.inner.copy_opts(from, to, options).await)?;
        match replaced {
            Some(old) => self.meter.add(size - old, 0),
            None => self.meter.add(size, 1),
        }
        Ok(())
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        // Delta commits on some stores are a rename-if-absent of a temporary file: the
        // bytes only move. An overwritten target's bytes go away.
        let replaced = match options.target_mode {
            object_store::RenameTargetMode::Create => None,
            object_store::RenameTargetMode::Overwrite => self.size_of(to).await?,
        };
        self.meter
            .seen("rename", self.inner.rename_opts(from, to, options).await)?;
        if let Some(old) = replaced {
            self.meter.add(-old, -1);
        }
        Ok(())
    }
}

/// Counts a multipart upload's bytes once it completes; an aborted one leaves nothing.
#[derive(Debug)]
struct MeteredUpload {
    inner: Box<dyn MultipartUpload>,
    location: Path,
    bytes: i64,
    meter: Arc<TableMeter>,
}

#[tonic::async_trait]
impl MultipartUpload for MeteredUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.bytes += data.content_length() as i64;
        self.inner.put_part(data).boxed()
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let result = self
            .meter
            .seen("complete_multipart", self.inner.complete().await)?;
        self.meter.add(self.bytes, 1);
        self.meter.wrote(&self.location, self.bytes);
        Ok(result)
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn writes_overwrites_copies_and_deletes_are_counted() {
        let ledger = Arc::new(UsageLedger::default());
        let store = MeteredStore::new(
            Arc::new(InMemory::new()),
            TableMeter::new("acme", "snowplow", "default", ledger.clone()),
        );
        let usage = || {
            let u = ledger.table("acme", "snowplow").unwrap_or_default();
            (u.bytes, u.objects)
        };
        store
            .put(&Path::from("a"), vec![0u8; 10].into())
            .await
            .unwrap();
        assert_eq!(usage(), (10, 1));
        store
            .put(&Path::from("a"), vec![0u8; 4].into())
            .await
            .unwrap();
        assert_eq!(usage(), (4, 1), "an overwrite replaces the old size");
        let mut upload = store.put_multipart(&Path::from("b")).await.unwrap();
        upload.put_part(vec![0u8; 6].into()).await.unwrap();
        upload.put_part(vec![0u8; 5].into()).await.unwrap();
        assert_eq!(usage(), (4, 1), "nothing until the upload completes");
        upload.complete().await.unwrap();
        assert_eq!(usage(), (15, 2));
        let mut aborted = store.put_multipart(&Path::from("c")).await.unwrap();
        aborted.put_part(vec![0u8; 6].into()).await.unwrap();
        aborted.abort().await.unwrap();
        assert_eq!(usage(), (15, 2));
        store
            .copy(&Path::from("b"), &Path::from("d"))
            .await
            .unwrap();
        assert_eq!(usage(), (26, 3));
        store.delete(&Path::from("b")).await.unwrap();
        assert_eq!(usage(), (15, 2));
        store
            .rename_if_not_exists(&Path::from("d"), &Path::from("e"))
            .await
            .unwrap();
        assert_eq!(usage(), (15, 2), "a rename moves bytes");
        let created = store
            .put_opts(
                &Path::from("e"),
                vec![0u8; 3].into(),
                PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                },
            )
            .await;
        assert!(created.is_err());
        assert_eq!(usage(), (15, 2), "a refused create adds nothing");
    }
}
