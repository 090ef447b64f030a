//! Where the files' current contents are ([`Store`]): on the real disk,
//! one backing file per file of the model, named by its number, in a
//! directory of the run's ([`FileStore`]); or in memory, for tests and
//! benchmarks of the model ([`MemStore`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use crate::Ino;

/// Where the files' current contents are.
pub trait Store {
    /// `len` bytes of `ino` from `offset` (fewer past its end).
    fn read_at(&self, ino: Ino, offset: u64, len: usize) -> Vec<u8>;
    /// Write `data` at `offset`, extending the file as needed.
    fn write_at(&mut self, ino: Ino, offset: u64, data: &[u8]);
    /// Cut or extend (with zeros) the file to `len`.
    fn set_len(&mut self, ino: Ino, len: u64);
    /// The file's length.
    fn len(&self, ino: Ino) -> u64;
    /// Forget the file (no name points at it any more).
    fn remove(&mut self, ino: Ino);
    /// The parts of `[from, to)` of `ino` that may hold data (not holes),
    /// in order. A store that cannot tell says the whole range.
    fn data_ranges(&self, _ino: Ino, from: u64, to: u64) -> Vec<(u64, u64)> {
        if from < to {
            vec![(from, to)]
        } else {
            Vec::new()
        }
    }
}

/// Files in memory (for tests and benchmarks of the model).
#[derive(Default)]
pub struct MemStore {
    files: BTreeMap<Ino, Vec<u8>>,
}

impl Store for MemStore {
    fn read_at(&self, ino: Ino, offset: u64, len: usize) -> Vec<u8> {
        let f = self.files.get(&ino).map_or(&[][..], Vec::as_slice);
        let start = (offset as usize).min(f.len());
        let end = start.saturating_add(len).min(f.len());
        f[start..end].to_vec()
    }
    fn write_at(&mut self, ino: Ino, offset: u64, data: &[u8]) {
        let f = self.files.entry(ino).or_default();
        let end = offset as usize + data.len();
        if f.len() < end {
            f.resize(end, 0);
        }
        f[offset as usize..end].copy_from_slice(data);
    }
    fn set_len(&mut self, ino: Ino, len: u64) {
        self.files.entry(ino).or_default().resize(len as usize, 0);
    }
    fn len(&self, ino: Ino) -> u64 {
        self.files.get(&ino).map_or(0, |f| f.len() as u64)
    }
    fn remove(&mut self, ino: Ino) {
        self.files.remove(&ino);
    }
}

/// A [`Store`] in a backing directory. An I/O error of the real disk is
/// kept (the first one) for the layer to report as EIO: the model itself
/// has no errors of its own.
pub struct FileStore {
    dir: PathBuf,
    open: RefCell<HashMap<Ino, File>>,
    error: RefCell<Option<String>>,
}

impl FileStore {
    /// A store in `dir` (created if missing).
    pub fn new(dir: &Path) -> std::io::Result<FileStore> {
        std::fs::create_dir_all(dir)?;
        Ok(FileStore {
            dir: dir.to_path_buf(),
            open: RefCell::new(HashMap::new()),
            error: RefCell::new(None),
        })
    }

    /// The backing file of `ino`.
    pub fn path(&self, ino: Ino) -> PathBuf {
        self.dir.join(ino.to_string())
    }

    /// The backing directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Flush `ino`'s backing file to the real disk (so that an fsync
    /// through the layer takes about as long as one without it).
    pub fn sync(&self, ino: Ino) {
        self.with(ino, "syncing", |f| f.sync_data());
    }

    /// The first I/O error of the real disk since the last call, if any.
    pub fn take_error(&self) -> Option<String> {
        self.error.borrow_mut().take()
    }

    fn failed(&self, what: &str, ino: Ino, e: std::io::Error) {
        let mut err = self.error.borrow_mut();
        if err.is_none() {
            *err = Some(format!("{what} {}: {e}", self.path(ino).display()));
        }
    }

    /// Run `f` on the open backing file of `ino` (opened, and created,
    /// on first use).
    fn with<T>(
        &self,
        ino: Ino,
        what: &str,
        f: impl FnOnce(&File) -> std::io::Result<T>,
    ) -> Option<T> {
        let mut open = self.open.borrow_mut();
        if let std::collections::hash_map::Entry::Vacant(slot) = open.entry(ino) {
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(self.path(ino))
            {
                Ok(file) => {
                    slot.insert(file);
                }
                Err(e) => {
                    drop(open);
                    self.failed("opening", ino, e);
                    return None;
                }
            }
        }
        let result = f(&open[&ino]);
        drop(open);
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.failed(what, ino, e);
                None
            }
        }
    }
}

impl Store for FileStore {
    fn read_at(&self, ino: Ino, offset: u64, len: usize) -> Vec<u8> {
        self.with(ino, "reading", |f| {
            let mut buf = vec![0u8; len];
            let mut got = 0;
            while got < len {
                match f.read_at(&mut buf[got..], offset + got as u64)? {
                    0 => break,
                    n => got += n,
                }
            }
            buf.truncate(got);
            Ok(buf)
        })
        .unwrap_or_default()
    }

    fn write_at(&mut self, ino: Ino, offset: u64, data: &[u8]) {
        self.with(ino, "writing", |f| f.write_all_at(data, offset));
    }

    fn set_len(&mut self, ino: Ino, len: u64) {
        self.with(ino, "resizing", |f| f.set_len(len));
    }

    fn len(&self, ino: Ino) -> u64 {
        self.with(ino, "reading the size of", |f| Ok(f.metadata()?.len()))
            .unwrap_or(0)
    }

    fn data_ranges(&self, ino: Ino, from: u64, to: u64) -> Vec<(u64, u64)> {
        use std::os::fd::AsRawFd;
        if from >= to {
            return Vec::new();
        }
        // SEEK_DATA / SEEK_HOLE: the holes of a sparse file are skipped
        // without reading them.
        self.with(ino, "reading the holes of", |f| {
            let fd = f.as_raw_fd();
            let mut out = Vec::new();
            let mut at = from;
            while at < to {
                // SAFETY: lseek on a descriptor we hold open.
                let data = unsafe { libc::lseek(fd, at as i64, libc::SEEK_DATA) };
                if data < 0 {
                    let e = std::io::Error::last_os_error();
                    // ENXIO: no data at or after `at`.
                    if e.raw_os_error() == Some(libc::ENXIO) {
                        break;
                    }
                    // A filesystem without SEEK_DATA: all of it.
                    out.push((at, to));
                    break;
                }
                let data = (data as u64).max(at);
                if data >= to {
                    break;
                }
                // SAFETY: as above.
                let hole = unsafe { libc::lseek(fd, data as i64, libc::SEEK_HOLE) };
                let hole = if hole < 0 { to } else { (hole as u64).min(to) };
                out.push((data, hole));
                at = hole;
            }
            Ok(out)
        })
        .unwrap_or_else(|| vec![(from, to)])
    }

    fn remove(&mut self, ino: Ino) {
        self.open.borrow_mut().remove(&ino);
        if let Err(e) = std::fs::remove_file(self.path(ino)) {
            if e.kind() != std::io::ErrorKind::NotFound {
                self.failed("removing", ino, e);
            }
        }
    }
}
