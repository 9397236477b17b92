//! A worker's place on its machine, kept across restarts, so that a restarted worker knows its
//! predecessor's leases are dead and takes the jobs up at once instead of waiting for the leases
//! to lapse.
//!
//! A slot is a file `slot-N` in a folder of the data dir, holding the lease owner id of the
//! worker that last took it. A worker takes the first slot it can lock exclusively (an OS file
//! lock, released by the kernel however the process ends, `kill -9` included). So a slot that can
//! be locked has no live holder: the id written in it names a dead worker, and [`Slot::previous`]
//! hands it over for `jobs::release_owner`. Workers of one machine each hold their own slot.
//!
//! This module must never guess: an id it cannot read is no previous owner, and a folder it
//! cannot lock (a read-only disk, a file system without locks) means no slot — the worker then
//! runs as before, its dead predecessors' jobs taken up when their leases lapse. Workers on other
//! machines sharing the folder over a network file system are only as safe as that file
//! system's locks; give each machine its own data dir.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The most slots tried in one folder (more workers than this on one machine run without one).
pub const MAX_SLOTS: usize = 256;

/// Why no slot was taken.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error("cannot use the worker slot folder {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("all {MAX_SLOTS} worker slots in {} are held by live workers", path.display())]
    Full { path: PathBuf },
}

/// A slot this process holds until it drops it (or ends).
#[derive(Debug)]
pub struct Slot {
    /// Holding the open, locked file is holding the slot.
    _file: File,
    path: PathBuf,
    owner: Uuid,
    previous: Option<Uuid>,
}

impl Slot {
    /// Takes the first free slot in `dir` (created if needed) for the lease owner `owner`,
    /// recording `owner` in it.
    pub fn take(dir: &Path, owner: Uuid) -> Result<Slot, SlotError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| SlotError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        for n in 0..MAX_SLOTS {
            let path = dir.join(format!("slot-{n}"));
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io(&path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(e)) => return Err(io(&path)(e)),
            }
            let mut text = String::new();
            // An unreadable or half-written id names no one.
            let previous = file.read_to_string(&mut text).ok().and_then(|_| Uuid::parse_str(text.trim()).ok());
            file.set_len(0).map_err(io(&path))?;
            file.seek(SeekFrom::Start(0)).map_err(io(&path))?;
            file.write_all(owner.hyphenated().to_string().as_bytes()).map_err(io(&path))?;
            file.sync_data().map_err(io(&path))?;
            return Ok(Slot { _file: file, path, owner, previous: previous.filter(|p| *p != owner) });
        }
        Err(SlotError::Full { path: dir.to_owned() })
    }

    /// The lease owner id this slot now names.
    pub fn owner(&self) -> Uuid {
        self.owner
    }

    /// The worker that held this slot before, now dead (its process released the lock).
    pub fn previous(&self) -> Option<Uuid> {
        self.previous
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_slot_is_skipped_and_a_released_one_names_its_last_holder() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let first = Slot::take(dir.path(), a).unwrap();
        assert_eq!(first.previous(), None);
        let second = Slot::take(dir.path(), b).unwrap();
        assert_ne!(second.path(), first.path(), "a held slot is not shared");
        assert_eq!(second.previous(), None);
        drop(first);
        let third = Slot::take(dir.path(), c).unwrap();
        assert_eq!(third.path(), dir.path().join("slot-0"));
        assert_eq!(third.previous(), Some(a), "the dead holder is named");
        assert_eq!(std::fs::read_to_string(third.path()).unwrap(), c.hyphenated().to_string());
    }

    #[test]
    fn garbage_in_a_slot_names_no_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("slot-0"), b"not an id\n").unwrap();
        let slot = Slot::take(dir.path(), Uuid::now_v7()).unwrap();
        assert_eq!(slot.previous(), None);
    }
}
