//! Copying objects between stores (an export, an archive, a restore): streamed (a multipart
//! upload past one part), skipped when the target already holds an object of the same size
//! (a copy resumed after a crash), and verified by a HEAD of every item afterwards.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{Attributes, ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

use super::LakeError;

/// Files copied at once.
const AT_ONCE: usize = 4;

/// One object to copy: where it is in the source, where it goes, and its size.
#[derive(Debug, Clone)]
pub struct CopyItem {
    pub from: Path,
    pub to: Path,
    pub size: u64,
    /// Copied even when the target holds an object of its size: one that changes in
    /// place (`_last_checkpoint`), where the same size says nothing.
    pub always: bool,
}

/// What a copy wrote now (items already complete in the target are not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    pub objects: u64,
    pub bytes: u64,
}

/// The two ends of a copy, and what every written object carries (its storage class).
#[derive(Debug, Clone)]
pub struct CopyEnds {
    pub source: Arc<dyn ObjectStore>,
    pub target: Arc<dyn ObjectStore>,
    pub attributes: Attributes,
}

/// Copies every item not yet in the target, then checks every item's size there.
pub async fn copy_all(ends: &CopyEnds, items: &[CopyItem]) -> Result<Copied, LakeError> {
    let outcomes: Vec<Option<u64>> = futures::stream::iter(items.iter().cloned())
        .map(|item| copy_one(ends, item))
        .buffer_unordered(AT_ONCE)
        .try_collect()
        .await?;
    let written = outcomes.iter().flatten();
    let copied = Copied {
        objects: written.clone().count() as u64,
        bytes: written.sum(),
    };
    futures::stream::iter(items.iter().cloned())
        .map(|item| verify(ends.target.as_ref(), item))
        .buffer_unordered(AT_ONCE * 4)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(copied)
}

/// The bytes written now; `None` when the target had the object already.
async fn copy_one(ends: &CopyEnds, item: CopyItem) -> Result<Option<u64>, LakeError> {
    if !item.always && size_of(ends.target.as_ref(), &item.to).await? == Some(item.size) {
        return Ok(None);
    }
    let got = ends.source.get(&item.from).await?;
    let mut chunks = got.into_stream();
    let mut writer = BufWriter::new(ends.target.clone(), item.to.clone())
        .with_attributes(ends.attributes.clone());
    while let Some(chunk) = chunks.next().await {
        writer.write_all(&chunk?).await.map_err(io_error)?;
    }
    writer.shutdown().await.map_err(io_error)?;
    Ok(Some(item.size))
}

async fn verify(target: &dyn ObjectStore, item: CopyItem) -> Result<(), LakeError> {
    let found = size_of(target, &item.to).await?;
    if found != Some(item.size) {
        return Err(LakeError::CopyMismatch {
            path: item.to.to_string(),
            expected: item.size,
            found: found.unwrap_or(0),
        });
    }
    Ok(())
}

async fn size_of(store: &dyn ObjectStore, path: &Path) -> Result<Option<u64>, LakeError> {
    match store.head(path).await {
        Ok(meta) => Ok(Some(meta.size)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A write error of the buffered upload: object_store's own error, when it is one.
fn io_error(e: std::io::Error) -> LakeError {
    match e.downcast::<object_store::Error>() {
        Ok(store) => store.into(),
        Err(e) => LakeError::Internal(format!("copying to the target: {e}")),
    }
}
