//! Opening the data directory's files: regular files only, and reads
//! bounded by what the format allows.
//!
//! A data directory is written by the node, but anyone can put something
//! else there: a symlink to `/dev/zero` would be read forever, a FIFO would
//! block the start-up forever. Every file is opened without blocking
//! (`O_NONBLOCK`, which regular files ignore) and checked to be a regular
//! file before a byte is read, and no read allocates more than the file's
//! size and the format's bound.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use super::{io_err, StorageError};

/// `O_NONBLOCK` on Linux: opening a FIFO for reading then returns at once
/// instead of waiting for a writer.
const O_NONBLOCK: i32 = 0o4000;

/// Open `path` (for writing too when `write`; created when `create`), or
/// `None` when it does not exist and is not to be created. Anything but a
/// regular file (after following symlinks) is refused with its kind.
pub fn open(path: &Path, write: bool, create: bool) -> Result<Option<File>, StorageError> {
    let opened = OpenOptions::new()
        .read(true)
        .write(write)
        .create(create)
        .truncate(false)
        .custom_flags(O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
        Err(e) => return Err(io_err("opening", path)(e)),
    };
    let kind = file
        .metadata()
        .map_err(io_err("inspecting", path))?
        .file_type();
    if !kind.is_file() {
        return Err(StorageError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_name(&kind),
        });
    }
    Ok(Some(file))
}

fn kind_name(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// The size of an open file.
pub fn size(file: &File, path: &Path) -> Result<u64, StorageError> {
    Ok(file.metadata().map_err(io_err("inspecting", path))?.len())
}

/// Read a whole small file (`None` when absent), refusing one larger than
/// `max` bytes before reading it.
pub fn read_small(path: &Path, max: u64) -> Result<Option<Vec<u8>>, StorageError> {
    let Some(file) = open(path, false, false)? else {
        return Ok(None);
    };
    let len = size(&file, path)?;
    if len > max {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: max,
            reason: format!("{len} bytes, where this file holds at most {max}"),
        });
    }
    let mut data = vec![0u8; len as usize];
    file.read_exact_at(&mut data, 0)
        .map_err(io_err("reading", path))?;
    Ok(Some(data))
}
