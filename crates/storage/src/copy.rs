//! Copying every object of one store into another (`turtlemen admin copy-media`), for moving
//! media between local disk and S3.
//!
//! An object is copied when the destination lacks it or holds it with another size; others are
//! skipped, so a copy that stopped half-way is resumed by running it again. Objects stream:
//! one larger than a [`PART_BYTES`] part is written in parts as it is read, so memory stays
//! bounded whatever the file size. A copy is written completely before it appears at the
//! destination. Fallbacks play no part: each side is read or written as itself.

use crate::{PART_BYTES, PARTS_IN_FLIGHT, Storage, StorageError};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt, PutPayload, WriteMultipart};

/// What a copy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Objects in the source.
    pub objects: u64,
    /// Objects written to the destination.
    pub copied: u64,
    /// Bytes written to the destination.
    pub bytes: u64,
    /// Objects the destination already held with the same size.
    pub present: u64,
}

/// Copies every object of `from` that `to` lacks (or holds with another size) into `to`;
/// `progress` is called after each object copied with the report so far.
pub async fn copy_missing(
    from: &Storage,
    to: &Storage,
    mut progress: impl FnMut(&CopyReport),
) -> Result<CopyReport, StorageError> {
    let mut report = CopyReport::default();
    let mut listing = from.store.list(None);
    while let Some(meta) = listing.try_next().await? {
        report.objects += 1;
        if let Some(there) = head(to, &meta.location).await?
            && there.size == meta.size
        {
            report.present += 1;
            continue;
        }
        copy_one(from, to, &meta).await?;
        report.copied += 1;
        report.bytes += meta.size;
        progress(&report);
    }
    Ok(report)
}

async fn head(store: &Storage, path: &Path) -> Result<Option<ObjectMeta>, StorageError> {
    match store.store.head(path).await {
        Ok(meta) => Ok(Some(meta)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Copies one object: in one request when it fits in a part, else streamed in parts.
async fn copy_one(from: &Storage, to: &Storage, meta: &ObjectMeta) -> Result<(), StorageError> {
    let read = from.store.get(&meta.location).await?;
    if meta.size < PART_BYTES as u64 {
        let bytes = read.bytes().await?;
        to.store.put(&meta.location, PutPayload::from(bytes)).await?;
        return Ok(());
    }
    let upload = to.store.put_multipart(&meta.location).await?;
    let mut write = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let mut stream = read.into_stream().boxed();
    let outcome: Result<(), StorageError> = async {
        while let Some(chunk) = stream.try_next().await? {
            write.wait_for_capacity(PARTS_IN_FLIGHT).await?;
            write.put(chunk);
        }
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => {
            write.finish().await?;
            Ok(())
        }
        Err(e) => {
            if let Err(abort) = write.abort().await {
                tracing::warn!(storage.key = %meta.location, error = %abort, "cannot abort a failed copy");
            }
            Err(e)
        }
    }
}
