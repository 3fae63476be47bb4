//! Copying objects between stores (an export, an archive, a restore): streamed (a multipart
//! upload past one part), skipped when the target already holds an object of the same size
//! (a copy resumed after a crash), and verified afterwards against a listing of the target:
//! every item there, with its size. Listings, not a HEAD per object: with many small files
//! the requests per object decide the speed. (ETags are not compared: multipart part sizes
//! and SSE-KMS make them differ between two copies of the same bytes.)

use std::collections::HashMap;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{Attributes, ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

use super::LakeError;

/// Objects streamed at once.
const AT_ONCE: usize = 4;

/// Objects the store copies itself at once (requests, no bytes through lakeport).
const SERVER_SIDE_AT_ONCE: usize = 16;

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
    /// Both ends are one client (two prefixes of one bucket or disk) and nothing is to be
    /// set on the copies: the store copies each object itself (S3 CopyObject, a hard link
    /// on a local disk), and the bytes never pass through lakeport.
    pub server_side: bool,
}

/// Copies every item (all under `target_prefix` in the target) that the target does not
/// hold yet with its size, wave after wave (a wave starts once the one before is in), then
/// checks every item's size in a listing of the target.
pub async fn copy_all(
    ends: &CopyEnds,
    waves: &[Vec<CopyItem>],
    target_prefix: &Path,
) -> Result<Copied, LakeError> {
    let present = sizes_under(ends.target.as_ref(), target_prefix).await?;
    let at_once = if ends.server_side {
        SERVER_SIDE_AT_ONCE
    } else {
        AT_ONCE
    };
    let mut copied = Copied::default();
    for wave in waves {
        let missing: Vec<CopyItem> = wave
            .iter()
            .filter(|item| item.always || present.get(&item.to) != Some(&item.size))
            .cloned()
            .collect();
        futures::stream::iter(missing.iter().cloned())
            .map(|item| copy_one(ends, item))
            .buffer_unordered(at_once)
            .try_collect::<Vec<()>>()
            .await?;
        copied.objects += missing.len() as u64;
        copied.bytes += missing.iter().map(|i| i.size).sum::<u64>();
    }
    let present = sizes_under(ends.target.as_ref(), target_prefix).await?;
    for item in waves.iter().flatten() {
        let found = present.get(&item.to).copied();
        if found != Some(item.size) {
            return Err(LakeError::CopyMismatch {
                path: item.to.to_string(),
                expected: item.size,
                found: found.unwrap_or(0),
            });
        }
    }
    Ok(copied)
}

async fn copy_one(ends: &CopyEnds, item: CopyItem) -> Result<(), LakeError> {
    if ends.server_side {
        match ends.source.copy(&item.from, &item.to).await {
            Ok(()) => return Ok(()),
            Err(e @ object_store::Error::NotFound { .. }) => return Err(e.into()),
            // Another disk (no hard link), an object past the store's copy limit: stream it.
            Err(_) => {}
        }
    }
    let got = ends.source.get(&item.from).await?;
    let mut chunks = got.into_stream();
    let mut writer = BufWriter::new(ends.target.clone(), item.to.clone())
        .with_attributes(ends.attributes.clone());
    while let Some(chunk) = chunks.next().await {
        writer.write_all(&chunk?).await.map_err(io_error)?;
    }
    writer.shutdown().await.map_err(io_error)?;
    Ok(())
}

/// Every object under `prefix` with its size (one listing).
async fn sizes_under(
    store: &dyn ObjectStore,
    prefix: &Path,
) -> Result<HashMap<Path, u64>, LakeError> {
    let objects: Vec<_> = store.list(Some(prefix)).try_collect().await?;
    Ok(objects.into_iter().map(|o| (o.location, o.size)).collect())
}

/// A write error of the buffered upload: object_store's own error, when it is one.
fn io_error(e: std::io::Error) -> LakeError {
    match e.downcast::<object_store::Error>() {
        Ok(store) => store.into(),
        Err(e) => LakeError::Internal(format!("copying to the target: {e}")),
    }
}
