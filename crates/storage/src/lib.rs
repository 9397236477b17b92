//! Media storage: uploaded originals, HLS output and thumbnails, on local disk or any
//! S3-compatible store, behind the `object_store` crate.
//!
//! [`Storage::open`] takes the configured `storage_url`: `file:///PATH` stores under that folder
//! (created if missing), `s3://BUCKET[/PREFIX]` uses the bucket with credentials, region and
//! endpoint from the standard `AWS_*` environment variables. Objects are named only by
//! [`StorageKey`]s, which are built from ids and fixed segments (see [`key`]). Writes stream in
//! fixed-size parts ([`Storage::put_stream`]) so memory stays flat whatever the file size, and a
//! multipart write becomes visible only once complete; reads stream, with byte ranges (on local
//! disk straight from the file, in large chunks).
//!
//! A store may have a *fallback* ([`Storage::with_fallback`], the `storage_fallback_url`
//! setting) while media moves from one store to another: a read that finds nothing in the
//! primary store tries the fallback, writes go to the primary only, and deletes go to both so
//! that nothing deleted reappears from the fallback. [`copy`] copies one store into another.
//!
//! This crate must never name an object from user input, nor buffer a whole object in memory;
//! it knows nothing about HTTP or the database.

pub mod copy;
pub mod key;
mod local;
pub mod segments;

pub use key::{Segment, StorageKey, VideoOutput};
pub use local::LocalFile;
pub use segments::StagedSegment;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt};
use url::Url;

/// Size of one part of a streaming write (S3 needs at least 5 MiB per part but the last).
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// Parts uploaded at once by one streaming write; with [`PART_BYTES`] this bounds a write's
/// buffers to about 24 MiB.
pub const PARTS_IN_FLIGHT: usize = 2;

/// What went wrong with storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no stored object at {0}")]
    NotFound(String),
    /// The requested byte range starts past the end (or is empty).
    #[error("byte range not satisfiable: the object has {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    /// The storage URL cannot be used; the message says why and how to fix it.
    #[error("{0}")]
    Config(String),
    /// Stored objects do not add up to what the caller recorded (a staged upload with a gap).
    #[error("inconsistent storage: {0}")]
    Inconsistent(String),
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage error: {0}")]
    Backend(#[source] object_store::Error),
}

impl From<object_store::Error> for StorageError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => StorageError::NotFound(path),
            other => StorageError::Backend(other),
        }
    }
}

/// Where the media lives, parsed from the `storage_url` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// A folder on local disk.
    Local { root: PathBuf },
    /// An S3 (or S3-compatible) bucket, optionally under a key prefix.
    S3 { bucket: String, prefix: Option<String> },
}

impl StorageLocation {
    pub fn from_url(url: &Url) -> Result<StorageLocation, StorageError> {
        match url.scheme() {
            "file" => {
                let root = url.to_file_path().map_err(|()| {
                    StorageError::Config(format!("storage_url {url} is not an absolute local path; use file:///PATH"))
                })?;
                Ok(StorageLocation::Local { root })
            }
            "s3" => {
                let bucket = url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| {
                    StorageError::Config(format!("storage_url {url} names no bucket; use s3://BUCKET[/PREFIX]"))
                })?;
                let prefix = url.path().trim_matches('/');
                Ok(StorageLocation::S3 {
                    bucket: bucket.to_owned(),
                    prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
                })
            }
            other => {
                Err(StorageError::Config(format!("unsupported storage {other:?}; use file:///PATH or s3://BUCKET")))
            }
        }
    }

    /// The S3 client settings: `AWS_*` environment variables, then the bucket from the URL.
    /// `None` for local storage.
    pub fn s3_builder(&self) -> Option<AmazonS3Builder> {
        match self {
            StorageLocation::S3 { bucket, .. } => Some(AmazonS3Builder::from_env().with_bucket_name(bucket)),
            StorageLocation::Local { .. } => None,
        }
    }
}

/// Metadata of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's key, as text (for logs and listings).
    pub key: String,
    pub size: u64,
    pub last_modified: std::time::SystemTime,
}

/// A byte range to read, as HTTP `Range` requests express them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ByteRange {
    /// `start..end` (end exclusive; an end past the object's end is cut to it).
    Bounded(Range<u64>),
    /// From `start` to the end.
    From(u64),
    /// The last `n` bytes.
    Last(u64),
}

impl From<ByteRange> for GetRange {
    fn from(r: ByteRange) -> GetRange {
        match r {
            ByteRange::Bounded(r) => GetRange::Bounded(r),
            ByteRange::From(start) => GetRange::Offset(start),
            ByteRange::Last(n) => GetRange::Suffix(n),
        }
    }
}

/// An object being read.
pub struct ObjectRead {
    /// The whole object's size.
    pub size: u64,
    /// The bytes the stream yields.
    pub range: Range<u64>,
    pub stream: BoxStream<'static, Result<Bytes, StorageError>>,
}

impl std::fmt::Debug for ObjectRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectRead").field("size", &self.size).field("range", &self.range).finish_non_exhaustive()
    }
}

/// The media store.
#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    location: StorageLocation,
    /// Read when an object is missing from `store` (see the crate docs); never written.
    fallback: Option<Box<Storage>>,
}

impl Storage {
    /// Opens the store named by the `storage_url` setting. Local folders are created; S3 is
    /// not contacted until the first request.
    pub async fn open(url: &Url) -> Result<Storage, StorageError> {
        Storage::open_location(StorageLocation::from_url(url)?).await
    }

    pub async fn open_location(location: StorageLocation) -> Result<Storage, StorageError> {
        let store: Arc<dyn ObjectStore> = match &location {
            StorageLocation::Local { root } => {
                tokio::fs::create_dir_all(root).await.map_err(|e| {
                    StorageError::Config(format!(
                        "cannot create the media folder {}: {e}; check storage_url and permissions",
                        root.display()
                    ))
                })?;
                Arc::new(LocalFileSystem::new_with_prefix(root)?.with_automatic_cleanup(true))
            }
            StorageLocation::S3 { .. } => {
                let builder = location.s3_builder().ok_or_else(|| StorageError::Config("not an S3 location".into()))?;
                return Storage::open_s3(location, builder);
            }
        };
        Ok(Storage { store, location, fallback: None })
    }

    /// An S3 store at `location` with the client settings of `builder` (which `open` takes
    /// from the `AWS_*` environment; tests give an endpoint of their own).
    pub fn open_s3(location: StorageLocation, builder: AmazonS3Builder) -> Result<Storage, StorageError> {
        let StorageLocation::S3 { bucket, prefix } = &location else {
            return Err(StorageError::Config("not an S3 location".into()));
        };
        let s3 = builder
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| StorageError::Config(format!("cannot configure S3 storage: {e}; check AWS_* settings")))?;
        let store: Arc<dyn ObjectStore> = match prefix {
            Some(prefix) => Arc::new(PrefixStore::new(s3, prefix.as_str())),
            None => Arc::new(s3),
        };
        Ok(Storage { store, location, fallback: None })
    }

    /// This store, reading from `fallback` whatever it does not hold itself; writes still go
    /// here only, deletes to both. A fallback's own fallback is dropped (one level only).
    pub fn with_fallback(self, mut fallback: Storage) -> Storage {
        fallback.fallback = None;
        Storage { fallback: Some(Box::new(fallback)), ..self }
    }

    /// The fallback store, if any.
    pub fn fallback(&self) -> Option<&Storage> {
        self.fallback.as_deref()
    }

    pub fn location(&self) -> &StorageLocation {
        &self.location
    }

    /// The file holding `key` when the store is a local folder (so a tool such as ffmpeg can
    /// read it in place); `None` on S3. The file may not exist.
    pub fn local_path(&self, key: &StorageKey) -> Option<PathBuf> {
        match &self.location {
            StorageLocation::Local { root } => Some(key.as_str().split('/').fold(root.clone(), |p, s| p.join(s))),
            StorageLocation::S3 { .. } => None,
        }
    }

    /// A local file holding `key` that a tool such as ffmpeg can read in place: the primary
    /// store's file when the object is there, else the fallback's when that is a local folder
    /// holding it; `None` when the object must be read through [`Storage::get`]. Without a
    /// fallback this is [`Storage::local_path`] (no file system check).
    pub async fn readable_local_path(&self, key: &StorageKey) -> Option<PathBuf> {
        let Some(fallback) = &self.fallback else {
            return self.local_path(key);
        };
        if let Some(path) = self.local_path(key)
            && tokio::fs::try_exists(&path).await.unwrap_or(false)
        {
            return Some(path);
        }
        match fallback.local_path(key) {
            Some(path) if tokio::fs::try_exists(&path).await.unwrap_or(false) => Some(path),
            _ => None,
        }
    }

    /// Starts a streaming write of `key` ([`ObjectWriter`]).
    pub async fn writer(&self, key: &StorageKey) -> Result<ObjectWriter, StorageError> {
        let upload = self.store.put_multipart(&key.path()).await?;
        Ok(ObjectWriter {
            write: WriteMultipart::new_with_chunk_size(upload, PART_BYTES),
            key: key.clone(),
            written: 0,
        })
    }

    /// Writes everything `reader` yields to `key` through an [`ObjectWriter`]; the object
    /// appears only when the write completes (an error aborts it and leaves any previous object
    /// in place). Returns the bytes written.
    pub async fn put_stream<R>(&self, key: &StorageKey, mut reader: R) -> Result<u64, StorageError>
    where
        R: AsyncRead + Unpin + Send,
    {
        let mut write = self.writer(key).await?;
        let mut buf = vec![0u8; 64 * 1024];
        let outcome: Result<(), StorageError> = async {
            loop {
                let n = reader.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                write.write(&buf[..n]).await?;
            }
        }
        .await;
        match outcome {
            Ok(()) => write.finish().await,
            Err(e) => {
                write.abort().await;
                Err(e)
            }
        }
    }

    /// Moves a finished local file into the store at `key`: a rename when the store is a local
    /// folder on the same file system (no copy, whatever the size), else a streaming write
    /// followed by removing the file. Returns the bytes stored.
    pub async fn put_file(&self, key: &StorageKey, file: &std::path::Path) -> Result<u64, StorageError> {
        let size = tokio::fs::metadata(file).await?.len();
        if let Some(target) = self.local_path(key) {
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            match tokio::fs::rename(file, &target).await {
                Ok(()) => return Ok(size),
                // Another file system: copy below.
                Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {}
                Err(e) => return Err(e.into()),
            }
        }
        let reader = tokio::fs::File::open(file).await?;
        let n = self.put_stream(key, reader).await?;
        tokio::fs::remove_file(file).await?;
        Ok(n)
    }

    /// Writes a small object (a playlist, a thumbnail) in one request.
    pub async fn put_bytes(&self, key: &StorageKey, bytes: Bytes) -> Result<(), StorageError> {
        self.store.put(&key.path(), PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// On a local store, opens the file holding `key` and resolves `range` against its size (an
    /// open and a stat, quick enough to run on an async worker), for a caller that sends the file
    /// itself; `None` on S3.
    /// With a fallback, an object missing here is opened there when the fallback is local too;
    /// `None` when it must be read through [`Storage::get`].
    pub fn open_local(&self, key: &StorageKey, range: Option<&ByteRange>) -> Option<Result<LocalFile, StorageError>> {
        let found = self.local_path(key).map(|path| local::open(&path, key.as_str(), range));
        let missing = matches!(found, Some(Err(StorageError::NotFound(_))));
        match &self.fallback {
            Some(fallback) if missing => fallback.open_local(key, range).or(found),
            _ => found,
        }
    }

    /// Streams an object, or part of it (from the fallback when the primary store lacks it).
    pub async fn get(&self, key: &StorageKey, range: Option<ByteRange>) -> Result<ObjectRead, StorageError> {
        match &self.fallback {
            None => self.get_here(key, range).await,
            Some(fallback) => match self.get_here(key, range.clone()).await {
                Err(StorageError::NotFound(_)) => fallback.get_here(key, range).await,
                other => other,
            },
        }
    }

    async fn get_here(&self, key: &StorageKey, range: Option<ByteRange>) -> Result<ObjectRead, StorageError> {
        if let Some(path) = self.local_path(key) {
            return local::get(path, key.as_str().to_owned(), range).await;
        }
        if let Some(ByteRange::Bounded(r)) = &range
            && r.start >= r.end
        {
            let size = self.size_here(key).await?;
            return Err(StorageError::RangeNotSatisfiable { size });
        }
        let options = GetOptions { range: range.clone().map(GetRange::from), ..GetOptions::default() };
        let result = match self.store.get_opts(&key.path(), options).await {
            Ok(result) => result,
            Err(e @ object_store::Error::NotFound { .. }) => return Err(e.into()),
            Err(e) => {
                // Backends word a bad range differently; decide it from the object's size.
                if range.is_some() {
                    let size = self.size_here(key).await?;
                    let unsatisfiable = match &range {
                        Some(ByteRange::Bounded(r)) => r.start >= size,
                        Some(ByteRange::From(start)) => *start >= size,
                        Some(ByteRange::Last(n)) => *n == 0,
                        None => false,
                    };
                    if unsatisfiable {
                        return Err(StorageError::RangeNotSatisfiable { size });
                    }
                }
                return Err(e.into());
            }
        };
        let size = result.meta.size;
        let range = result.range.clone();
        let stream = result.into_stream().map_err(StorageError::from).boxed();
        Ok(ObjectRead { size, range, stream })
    }

    /// An object's metadata (the fallback's when the primary store lacks it), or `None` if there
    /// is none at `key`.
    pub async fn head(&self, key: &StorageKey) -> Result<Option<ObjectInfo>, StorageError> {
        match (self.head_here(key).await?, &self.fallback) {
            (None, Some(fallback)) => fallback.head_here(key).await,
            (found, _) => Ok(found),
        }
    }

    async fn head_here(&self, key: &StorageKey) -> Result<Option<ObjectInfo>, StorageError> {
        match self.store.head(&key.path()).await {
            Ok(meta) => Ok(Some(info(meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn size_here(&self, key: &StorageKey) -> Result<u64, StorageError> {
        self.head_here(key).await?.map(|i| i.size).ok_or_else(|| StorageError::NotFound(key.to_string()))
    }

    /// Deletes one object, in the fallback too; deleting a missing object is not an error.
    pub async fn delete(&self, key: &StorageKey) -> Result<(), StorageError> {
        self.delete_here(key).await?;
        if let Some(fallback) = &self.fallback {
            fallback.delete_here(key).await?;
        }
        Ok(())
    }

    async fn delete_here(&self, key: &StorageKey) -> Result<(), StorageError> {
        match self.store.delete(&key.path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object under `prefix` (e.g. all of one video) in the primary store (never the
    /// fallback), in no particular order.
    pub async fn list(&self, prefix: &StorageKey) -> Result<Vec<ObjectInfo>, StorageError> {
        self.store.list(Some(&prefix.path())).map_ok(info).map_err(StorageError::from).try_collect().await
    }

    /// Deletes every object under `prefix`, in the fallback too; returns how many there were in
    /// the primary store. On local disk the emptied folders go too.
    pub async fn delete_prefix(&self, prefix: &StorageKey) -> Result<usize, StorageError> {
        let deleted = self.delete_prefix_here(prefix).await?;
        if let Some(fallback) = &self.fallback {
            fallback.delete_prefix_here(prefix).await?;
        }
        Ok(deleted)
    }

    async fn delete_prefix_here(&self, prefix: &StorageKey) -> Result<usize, StorageError> {
        let locations = self.store.list(Some(&prefix.path())).map_ok(|meta| meta.location).boxed();
        let deleted: Vec<_> = self
            .store
            .delete_stream(locations)
            .or_else(|e| async move {
                match e {
                    // Gone between listing and deleting: that is what we wanted.
                    object_store::Error::NotFound { path, .. } => Ok(object_store::path::Path::from(path)),
                    other => Err(other),
                }
            })
            .try_collect()
            .await?;
        Ok(deleted.len())
    }
}

/// A streaming write of one object, in [`PART_BYTES`] parts with at most [`PARTS_IN_FLIGHT`]
/// uploading at a time: memory stays flat whatever the size. The object appears only at
/// [`ObjectWriter::finish`]; dropping the writer or [`ObjectWriter::abort`] leaves no object.
pub struct ObjectWriter {
    write: WriteMultipart,
    key: StorageKey,
    written: u64,
}

impl ObjectWriter {
    /// Appends `bytes`, waiting while [`PARTS_IN_FLIGHT`] parts are uploading.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.write.wait_for_capacity(PARTS_IN_FLIGHT).await?;
        self.write.write(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Appends `bytes` without copying them.
    pub async fn put(&mut self, bytes: Bytes) -> Result<(), StorageError> {
        self.write.wait_for_capacity(PARTS_IN_FLIGHT).await?;
        self.written += bytes.len() as u64;
        self.write.put(bytes);
        Ok(())
    }

    /// Bytes appended so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Completes the object; returns its size.
    pub async fn finish(self) -> Result<u64, StorageError> {
        self.write.finish().await?;
        Ok(self.written)
    }

    /// Gives the write up: no object appears (an earlier one at the key stays).
    pub async fn abort(self) {
        if let Err(e) = self.write.abort().await {
            tracing::warn!(storage.key = %self.key, error = %e, "cannot abort a failed upload");
        }
    }
}

fn info(meta: object_store::ObjectMeta) -> ObjectInfo {
    ObjectInfo { key: meta.location.to_string(), size: meta.size, last_modified: meta.last_modified.into() }
}

#[cfg(test)]
mod tests;
