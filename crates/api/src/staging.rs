//! Where the bytes of an upload in progress are staged until it is whole: a staging file beside
//! the media on local disk ([`StagingWriter`]), or segments in the object store on S3
//! ([`SegmentWriter`]). Both live where every API replica reaches them, so a resumed upload may
//! land on any replica; the committed offset is the database's.
//!
//! ## The staging file
//!
//! The staging file is written by a blocking thread of its own.
//! A request appending to an upload hands each piece of the body to [`StagingWriter::write`]
//! and goes back to reading the network; the thread writes through a large buffer and, when
//! asked, makes the bytes durable (`sync_data`) and reports the offset that is now on disk
//! ([`StagingWriter::durable`]). So a sync never stalls the upload, as it would if the request
//! waited for it. At most [`QUEUED`] pieces wait for the thread, which bounds the memory one
//! upload holds (hyper hands out pieces of at most a few hundred KiB). Every
//! [`WRITEBACK_EVERY`] bytes the kernel is told to start writing back, so the disk is busy
//! while the bytes arrive rather than all at once at each sync.

use bytes::Bytes;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::PathBuf;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use turtlemen_storage::{ObjectWriter, Storage, StorageError, StorageKey};
use uuid::Uuid;

/// Pieces of body queued for the writer thread at most. Each is allocated on an async worker
/// and freed on the writer thread, which the allocator gives back slowly: with 16, three 1 GiB
/// uploads in a row took the server from 33 to 68 MiB; with 8, to 46 MiB, at the same speed
/// (`benches/videos.sh`).
const QUEUED: usize = 8;
/// The writer thread's buffer.
const BUFFER: usize = 1024 * 1024;
/// Bytes after which the kernel is asked to start writing the file back to disk.
const WRITEBACK_EVERY: u64 = 8 * 1024 * 1024;

/// Asks the kernel to start writing `len` bytes from `offset` back to disk, without waiting,
/// so a later `sync_data` finds little left to do and the disk works while the network does.
/// On Linux `POSIX_FADV_DONTNEED` starts writeback of the range's dirty pages; pages still dirty
/// or being written stay cached (only already-clean ones are dropped, and the range was just
/// written), so the transcode that reads the original next still finds most of it in memory.
/// PostgreSQL flushes data the same way where `sync_file_range` is missing. Only advice: an
/// error changes nothing.
fn start_writeback(file: &File, offset: u64, len: u64) {
    if let Some(len) = std::num::NonZeroU64::new(len) {
        let _ = rustix::fs::fadvise(file, offset, Some(len), rustix::fs::Advice::DontNeed);
    }
}

enum Op {
    Write(Bytes),
    /// Make everything written so far durable, then report this offset.
    Sync(u64),
}

/// Appends to one staging file from a blocking thread.
pub struct StagingWriter {
    ops: Option<mpsc::Sender<Op>>,
    durable: watch::Receiver<u64>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl StagingWriter {
    /// Opens the staging file at `path`, cuts it to `start` bytes and appends from there. A
    /// missing file is an error of kind `NotFound`.
    pub async fn open(path: PathBuf, start: u64) -> io::Result<StagingWriter> {
        let file = tokio::task::spawn_blocking(move || -> io::Result<File> {
            let mut file = OpenOptions::new().write(true).open(&path)?;
            file.set_len(start)?;
            file.seek(SeekFrom::Start(start))?;
            Ok(file)
        })
        .await
        .map_err(io::Error::other)??;
        let (ops, mut rx) = mpsc::channel(QUEUED);
        let (durable_tx, durable) = watch::channel(start);
        let thread = tokio::task::spawn_blocking(move || {
            let mut out = BufWriter::with_capacity(BUFFER, file);
            // Written since `start`, and how much of that the kernel was told to write back.
            let (mut written, mut kicked) = (0u64, 0u64);
            while let Some(op) = rx.blocking_recv() {
                match op {
                    Op::Write(bytes) => {
                        out.write_all(&bytes)?;
                        written += bytes.len() as u64;
                        if written - kicked >= WRITEBACK_EVERY {
                            out.flush()?;
                            start_writeback(out.get_ref(), start + kicked, written - kicked);
                            kicked = written;
                        }
                    }
                    Op::Sync(offset) => {
                        out.flush()?;
                        out.get_ref().sync_data()?;
                        durable_tx.send_replace(offset);
                    }
                }
            }
            out.flush()
        });
        Ok(StagingWriter { ops: Some(ops), durable, thread: Some(thread) })
    }

    async fn send(&mut self, op: Op) -> io::Result<()> {
        let sent = match &self.ops {
            Some(ops) => ops.send(op).await.is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(self.stop().await.err().unwrap_or_else(|| io::Error::other("staging writer stopped")))
        }
    }

    /// Queues `bytes` to be appended; waits only when the thread is [`QUEUED`] pieces behind.
    /// An error is the thread's: the disk refused a write.
    pub async fn write(&mut self, bytes: Bytes) -> io::Result<()> {
        self.send(Op::Write(bytes)).await
    }

    /// Asks for everything written so far to be made durable; [`Self::durable`] reports
    /// `offset` once it is.
    pub async fn request_sync(&mut self, offset: u64) -> io::Result<()> {
        self.send(Op::Sync(offset)).await
    }

    /// The highest offset known to be on disk.
    pub fn durable(&self) -> u64 {
        *self.durable.borrow()
    }

    /// Ends the thread, returning its first error.
    async fn stop(&mut self) -> io::Result<()> {
        self.ops = None;
        match self.thread.take() {
            Some(thread) => thread.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }

    /// Makes everything up to `offset` (all that was written) durable and closes the file.
    pub async fn finish(mut self, offset: u64) -> io::Result<()> {
        self.request_sync(offset).await?;
        self.stop().await
    }

    /// Stops writing and cuts the file back to `offset` bytes.
    pub async fn abandon(mut self, path: PathBuf, offset: u64) {
        let _ = self.stop().await;
        let _ = tokio::task::spawn_blocking(move || OpenOptions::new().write(true).open(path)?.set_len(offset)).await;
    }
}

/// Appends to an upload staged in the object store: one segment
/// ([`turtlemen_storage::segments`]) from the committed offset to the next [`SegmentWriter::cut`],
/// streamed in parts. A segment is durable once cut, and only then may its end be committed.
pub struct SegmentWriter {
    storage: Storage,
    upload: Uuid,
    /// The offset the next byte goes to.
    offset: u64,
    durable: u64,
    current: Option<ObjectWriter>,
}

impl SegmentWriter {
    /// Appends to upload `upload` from the committed offset `start`.
    pub fn new(storage: Storage, upload: Uuid, start: u64) -> SegmentWriter {
        SegmentWriter { storage, upload, offset: start, durable: start, current: None }
    }

    /// Appends `bytes` to the open segment, starting one at the current offset if none is.
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), StorageError> {
        let segment = match &mut self.current {
            Some(segment) => segment,
            None => {
                let key = StorageKey::upload_segment(self.upload, self.offset);
                self.current.insert(self.storage.writer(&key).await?)
            }
        };
        let n = bytes.len() as u64;
        segment.put(bytes).await?;
        self.offset += n;
        Ok(())
    }

    /// Completes the open segment: everything written so far is durable. Returns that offset.
    pub async fn cut(&mut self) -> Result<u64, StorageError> {
        if let Some(segment) = self.current.take() {
            if segment.written() > 0 {
                segment.finish().await?;
            } else {
                segment.abort().await;
            }
        }
        self.durable = self.offset;
        Ok(self.durable)
    }

    /// The highest offset known to be stored.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Gives up the open segment: its bytes never appear.
    pub async fn abandon(mut self) {
        if let Some(segment) = self.current.take() {
            segment.abort().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_from_the_offset_and_reports_what_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staging");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut w = StagingWriter::open(path.clone(), 4).await.unwrap();
        assert_eq!(w.durable(), 4);
        w.write(Bytes::from_static(b"abc")).await.unwrap();
        w.request_sync(7).await.unwrap();
        let mut durable = w.durable.clone();
        durable.wait_for(|&d| d == 7).await.unwrap();
        w.write(Bytes::from_static(b"def")).await.unwrap();
        w.finish(10).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"0123abcdef");

        let mut w = StagingWriter::open(path.clone(), 10).await.unwrap();
        w.write(Bytes::from_static(b"never counted")).await.unwrap();
        w.abandon(path.clone(), 10).await;
        assert_eq!(std::fs::read(&path).unwrap(), b"0123abcdef");
        assert_eq!(
            StagingWriter::open(dir.path().join("gone"), 0).await.err().map(|e| e.kind()),
            Some(io::ErrorKind::NotFound)
        );
    }

    #[tokio::test]
    async fn bytes_past_several_writeback_points_arrive_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staging");
        std::fs::write(&path, b"").unwrap();
        let data: Vec<u8> = (0..(2 * WRITEBACK_EVERY as usize + 12_345)).map(|i| (i % 253) as u8).collect();
        let mut w = StagingWriter::open(path.clone(), 0).await.unwrap();
        for piece in data.chunks(200_000) {
            w.write(Bytes::copy_from_slice(piece)).await.unwrap();
        }
        w.finish(data.len() as u64).await.unwrap();
        assert!(std::fs::read(&path).unwrap() == data);
    }
}
