//! The record spool: when the database cannot take a batch of sealed records, the batch is written to a
//! file of its own in `<data-dir>/spool/` (written whole, fsynced, then renamed into place) and the proxy may
//! acknowledge it; a replayer writes spooled batches to the database once it answers again, and deletes each
//! file only after its transaction committed. Inserting a record twice is harmless (ids are unique), so a
//! crash between commit and delete costs nothing. Processes sharing a data directory (`serve` and `proxy`)
//! share the spool: a file is replayed by whoever holds its lock.

use crate::records::SealedRecord;
use crate::store::Store;
use std::fs::File;
use std::io::{self, BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
}

/// Why a spooled batch could not be replayed yet.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("reading the spool: {0}")]
    Io(#[from] io::Error),
    #[error("the database is still unavailable: {0}")]
    Store(#[from] crate::store::StoreError),
}

impl Spool {
    pub fn open(data_dir: &Path) -> io::Result<Spool> {
        let dir = data_dir.join("spool");
        crate::data_dir::create_private_dir(&dir)?;
        Ok(Spool { dir })
    }

    /// Writes `batch` durably: when this returns `Ok`, the records survive a crash of the process or the
    /// machine. Blocking (fsync); call from a blocking thread.
    pub fn append(&self, batch: &[SealedRecord]) -> io::Result<()> {
        let name = format!("{}.jsonl", uuid::Uuid::now_v7());
        let partial = self.dir.join(format!(".{name}.partial"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)?;
        let mut text = Vec::new();
        for sealed in batch {
            serde_json::to_writer(&mut text, sealed).map_err(io::Error::other)?;
            text.push(b'\n');
        }
        file.write_all(&text)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&partial, self.dir.join(&name))?;
        File::open(&self.dir)?.sync_all()
    }

    /// Spooled batches, oldest first.
    pub fn files(&self) -> io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "jsonl")
            })
            .collect();
        files.sort();
        Ok(files)
    }

    /// Writes every spooled batch to `store`, oldest first, deleting each once committed; stops at the first
    /// batch the store refuses. Returns how many records were written.
    pub async fn replay(&self, store: &dyn Store) -> Result<usize, ReplayError> {
        let mut written = 0;
        for path in self.files()? {
            let claimed = tokio::task::spawn_blocking(move || claim(path))
                .await
                .map_err(io::Error::other)??;
            let Some(claimed) = claimed else {
                continue; // another process is replaying it, or it is gone
            };
            store.insert_records(&claimed.batch).await?;
            written += claimed.batch.len();
            std::fs::remove_file(&claimed.path)?;
        }
        Ok(written)
    }
}

/// A spooled batch locked by this process while it is replayed; the lock ends with the process.
struct Claimed {
    lock: File,
    path: PathBuf,
    batch: Vec<SealedRecord>,
}

impl Drop for Claimed {
    fn drop(&mut self) {
        // SAFETY: flock only reads the descriptor, which `self.lock` keeps open until after this call.
        unsafe {
            libc::flock(self.lock.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

/// Locks and reads a spooled batch; `None` when another process holds it or it is already gone.
fn claim(path: PathBuf) -> io::Result<Option<Claimed>> {
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    // SAFETY: flock only reads the descriptor of a file we hold open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Ok(None);
    }
    if !path.exists() {
        return Ok(None); // replayed and deleted between our open and our lock
    }
    let mut batch = Vec::new();
    for line in io::BufReader::new(&file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        batch.push(serde_json::from_str(&line).map_err(io::Error::other)?);
    }
    Ok(Some(Claimed {
        lock: file,
        path,
        batch,
    }))
}
