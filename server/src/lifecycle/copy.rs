//! Copying data files between stores: streamed (a multipart upload past one part), skipped
//! when the target already holds an object of the same size (a copy resumed after a crash),
//! and verified by a HEAD of every copied object.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

use super::LifecycleError;
use crate::lake::LakeError;

/// Files copied at once.
const AT_ONCE: usize = 4;

/// One object to copy: where it is in the source, where it goes, and its size.
#[derive(Debug, Clone)]
pub(super) struct CopyItem {
    pub(super) from: Path,
    pub(super) to: Path,
    pub(super) size: u64,
}

/// Copies every item not yet in the target, then checks every item's size there; how many
/// were written now (the others were complete from an earlier try).
pub(super) async fn copy_all(
    source: Arc<dyn ObjectStore>,
    target: Arc<dyn ObjectStore>,
    items: &[CopyItem],
) -> Result<u64, LifecycleError> {
    let outcomes: Vec<bool> = futures::stream::iter(items.iter().cloned())
        .map(|item| copy_one(source.clone(), target.clone(), item))
        .buffer_unordered(AT_ONCE)
        .try_collect()
        .await?;
    let written = outcomes.iter().filter(|w| **w).count() as u64;
    futures::stream::iter(items.iter().cloned())
        .map(|item| verify(target.clone(), item))
        .buffer_unordered(AT_ONCE * 4)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(written)
}

/// True when the object was written now, false when the target had it already.
async fn copy_one(
    source: Arc<dyn ObjectStore>,
    target: Arc<dyn ObjectStore>,
    item: CopyItem,
) -> Result<bool, LifecycleError> {
    if size_of(target.as_ref(), &item.to).await? == Some(item.size) {
        return Ok(false);
    }
    let got = source.get(&item.from).await.map_err(LakeError::from)?;
    let mut chunks = got.into_stream();
    let mut writer = BufWriter::new(target, item.to.clone());
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(LakeError::from)?;
        writer.write_all(&chunk).await.map_err(io_error)?;
    }
    writer.shutdown().await.map_err(io_error)?;
    Ok(true)
}

async fn verify(target: Arc<dyn ObjectStore>, item: CopyItem) -> Result<(), LifecycleError> {
    let found = size_of(target.as_ref(), &item.to).await?;
    if found != Some(item.size) {
        return Err(LifecycleError::CopyMismatch {
            path: item.to.to_string(),
            expected: item.size,
            found: found.unwrap_or(0),
        });
    }
    Ok(())
}

async fn size_of(store: &dyn ObjectStore, path: &Path) -> Result<Option<u64>, LifecycleError> {
    match store.head(path).await {
        Ok(meta) => Ok(Some(meta.size)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(LakeError::from(e).into()),
    }
}

/// A write error of the buffered upload: object_store's own error, when it is one.
fn io_error(e: std::io::Error) -> LifecycleError {
    match e.downcast::<object_store::Error>() {
        Ok(store) => LakeError::from(store).into(),
        Err(e) => LakeError::Internal(format!("copying to the target: {e}")).into(),
    }
}
