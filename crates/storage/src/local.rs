//! Reads from local disk without `object_store`'s generic path.
//!
//! `object_store`'s local backend streams a file in small chunks, each read on the blocking
//! pool; for the many small, hot reads of HLS playback (a segment is about a megabyte) that
//! hand-off dominates the cost. Here one blocking call opens the file, resolves the range and
//! reads the first [`CHUNK`]; a larger range goes on in chunks of the same size, so memory per
//! read stays bounded whatever the file size.
//!
//! Only reads take this path; writes keep `object_store`'s atomic rename, so a reader never sees
//! a half-written file.

use crate::{ByteRange, ObjectRead, StorageError};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Bytes read per blocking call.
pub const CHUNK: u64 = 2 * 1024 * 1024;

/// The bytes of `range` within an object of `size` bytes, or why there are none.
pub(crate) fn resolve(range: Option<&ByteRange>, size: u64) -> Result<Range<u64>, StorageError> {
    let unsatisfiable = || StorageError::RangeNotSatisfiable { size };
    match range {
        None => Ok(0..size),
        Some(ByteRange::Bounded(r)) if r.start < r.end && r.start < size => Ok(r.start..r.end.min(size)),
        Some(ByteRange::From(start)) if *start < size => Ok(*start..size),
        Some(ByteRange::Last(n)) if *n > 0 && size > 0 => Ok(size.saturating_sub(*n)..size),
        Some(_) => Err(unsatisfiable()),
    }
}

/// Reads up to [`CHUNK`] bytes of `range` from `file` (already positioned at `range.start`) of
/// `size` bytes. The buffer is filled by the read itself, never zeroed first; a chunk that runs
/// to the end of the file is read in one call (the standard library sizes it from the file).
fn read_chunk(file: &mut File, range: &Range<u64>, size: u64) -> std::io::Result<Bytes> {
    let want = (range.end - range.start).min(CHUNK);
    let mut buf = Vec::with_capacity(want as usize);
    if range.start + want == size {
        file.read_to_end(&mut buf)?;
        buf.truncate(want as usize);
    } else {
        file.take(want).read_to_end(&mut buf)?;
    }
    if (buf.len() as u64) < want {
        // The file shrank under us: stop short rather than send made-up bytes; the client sees
        // a body shorter than announced and retries.
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file shrank while read"));
    }
    Ok(Bytes::from(buf))
}

/// A local file opened for reading `range` of its `size` bytes.
#[derive(Debug)]
pub struct LocalFile {
    pub file: File,
    pub size: u64,
    pub range: Range<u64>,
}

/// Opens the file at `path` and resolves `range` against its size: an open and a stat, no read.
/// `key` names the object in errors.
pub fn open(path: &Path, key: &str, range: Option<&ByteRange>) -> Result<LocalFile, StorageError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StorageError::NotFound(key.to_owned())),
        Err(e) => return Err(e.into()),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(StorageError::NotFound(key.to_owned()));
    }
    let size = meta.len();
    let range = resolve(range, size)?;
    Ok(LocalFile { file, size, range })
}

/// Streams `range` of the file at `path`; `key` names the object in errors.
pub async fn get(path: PathBuf, key: String, range: Option<ByteRange>) -> Result<ObjectRead, StorageError> {
    let opened = tokio::task::spawn_blocking(move || {
        let LocalFile { mut file, size, range: whole } = open(&path, &key, range.as_ref())?;
        file.seek(SeekFrom::Start(whole.start))?;
        let first = read_chunk(&mut file, &whole, size)?;
        Ok::<_, StorageError>((file, size, whole, first))
    })
    .await
    .map_err(|e| StorageError::Io(std::io::Error::other(e)))?;
    let (file, size, whole, first) = opened?;
    let rest = whole.start + first.len() as u64..whole.end;
    let head = stream::once(async move { Ok(first) });
    let tail = stream::try_unfold((file, rest), move |(mut file, rest)| async move {
        if rest.is_empty() {
            return Ok(None);
        }
        let (file, rest, chunk) = tokio::task::spawn_blocking(move || {
            let chunk = read_chunk(&mut file, &rest, size)?;
            Ok::<_, std::io::Error>((file, rest.start + chunk.len() as u64..rest.end, chunk))
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(Some((chunk, (file, rest))))
    })
    .map(|r: std::io::Result<Bytes>| r.map_err(StorageError::from));
    Ok(ObjectRead { size, range: whole, stream: head.chain(tail).boxed() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_as_http_reads_them() {
        assert_eq!(resolve(None, 10).unwrap(), 0..10);
        assert_eq!(resolve(None, 0).unwrap(), 0..0);
        assert_eq!(resolve(Some(&ByteRange::Bounded(2..5)), 10).unwrap(), 2..5);
        assert_eq!(resolve(Some(&ByteRange::Bounded(8..u64::MAX)), 10).unwrap(), 8..10);
        assert_eq!(resolve(Some(&ByteRange::From(9)), 10).unwrap(), 9..10);
        assert_eq!(resolve(Some(&ByteRange::Last(3)), 10).unwrap(), 7..10);
        assert_eq!(resolve(Some(&ByteRange::Last(30)), 10).unwrap(), 0..10);
        for bad in [ByteRange::Bounded(10..20), ByteRange::Bounded(5..5), ByteRange::From(10), ByteRange::Last(0)] {
            assert!(matches!(resolve(Some(&bad), 10), Err(StorageError::RangeNotSatisfiable { size: 10 })), "{bad:?}");
        }
        assert!(resolve(Some(&ByteRange::Last(1)), 0).is_err());
    }
}
