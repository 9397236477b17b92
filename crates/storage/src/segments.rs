//! Uploads staged in the object store as segments, so that any API replica can resume them.
//!
//! An upload in progress is a set of objects `uploads/{id}/{start:020}`, each holding the bytes
//! from offset `start` on ([`StorageKey::upload_segment`]). A writer starts a segment at the
//! committed offset (kept in the database, not here), and the segment counts only once the
//! writer has finished it and moved the committed offset to its end. So the committed bytes are
//! the chain of segments from offset 0, each starting where the previous one ends; anything else
//! under the prefix is left over from a writer that died or lost its lease, and is ignored.
//! [`Storage::compose`] joins the chain into one object once the upload is whole.
//!
//! This module keeps no offsets of its own and never decides what is committed: the caller
//! passes the committed length.

use crate::{Storage, StorageError, StorageKey};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use std::collections::BTreeMap;
use uuid::Uuid;

/// One staged segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StagedSegment {
    pub start: u64,
    pub size: u64,
}

impl Storage {
    /// The segments staged for upload `id` that form its bytes `0..length`, in order; an error
    /// naming the first gap when they do not reach `length`.
    pub async fn upload_chain(&self, id: Uuid, length: u64) -> Result<Vec<StagedSegment>, StorageError> {
        let found: BTreeMap<u64, u64> = self
            .list(&StorageKey::upload(id))
            .await?
            .into_iter()
            .filter_map(|info| {
                let start = info.key.rsplit('/').next()?.parse::<u64>().ok()?;
                Some((start, info.size))
            })
            .collect();
        let mut chain = Vec::new();
        let mut at = 0;
        while at < length {
            match found.get(&at) {
                Some(&size) if size > 0 => {
                    chain.push(StagedSegment { start: at, size });
                    at += size;
                }
                _ => return Err(StorageError::NotFound(StorageKey::upload_segment(id, at).to_string())),
            }
        }
        if at != length {
            return Err(StorageError::Inconsistent(format!(
                "the staged segments of upload {id} run to byte {at}, past its length {length}"
            )));
        }
        Ok(chain)
    }

    /// Joins the staged bytes `0..length` of upload `id` into the object `target` (a server-side
    /// copy when they are one segment, else a streaming read and write), then removes the
    /// segments. Safe to run again after an interruption: `target` is overwritten whole, and
    /// once the segments are gone a whole `target` counts as done.
    pub async fn compose(&self, id: Uuid, length: u64, target: &StorageKey) -> Result<u64, StorageError> {
        let chain = match self.upload_chain(id, length).await {
            Ok(chain) => chain,
            Err(StorageError::NotFound(missing)) => {
                // Composed by an earlier run that was interrupted before the caller recorded it.
                return match self.head(target).await? {
                    Some(info) if info.size == length => Ok(length),
                    _ => Err(StorageError::NotFound(missing)),
                };
            }
            Err(e) => return Err(e),
        };
        if let [only] = chain.as_slice() {
            self.store.copy(&StorageKey::upload_segment(id, only.start).path(), &target.path()).await?;
        } else {
            let mut out = self.writer(target).await?;
            let copied: Result<(), StorageError> = async {
                for segment in &chain {
                    let mut read = self.get(&StorageKey::upload_segment(id, segment.start), None).await?.stream;
                    while let Some(bytes) = read.try_next().await? {
                        out.put(bytes).await?;
                    }
                }
                Ok(())
            }
            .await;
            if let Err(e) = copied {
                out.abort().await;
                return Err(e);
            }
            let written = out.finish().await?;
            if written != length {
                return Err(StorageError::Inconsistent(format!(
                    "upload {id}: composed {written} bytes where {length} were staged"
                )));
            }
        }
        self.delete_prefix(&StorageKey::upload(id)).await?;
        Ok(length)
    }
}
