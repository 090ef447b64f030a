//! The snapshot file: one snapshot, written whole to `snapshot.tmp`,
//! fsynced, renamed over `snapshot`, and the directory fsynced, so a crash
//! leaves either the old snapshot or the new one, never half of one.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! magic "FLSNAP01" (8 bytes)
//! meta_len: u32 | crc32(meta): u32 | meta (bincode of SnapshotMeta)
//! data_len: u64 | crc32(data): u32 | data (the state machine's bytes)
//! ```
//!
//! Nothing may follow the data. A file that does not check out is refused
//! with its path and the byte offset of the part that is wrong: the rename
//! only ever exposes a complete, fsynced file, so a bad one is damage, not
//! a crash, and starting without it would lose acknowledged writes.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::raft::{Snapshot, SnapshotMeta};

use super::{io_err, sync_dir, StorageError};

/// The file's first bytes.
pub const MAGIC: &[u8; 8] = b"FLSNAP01";
/// The largest state machine accepted (4 GiB).
pub const MAX_DATA: u64 = 4 << 30;

fn crc(bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(bytes);
    h.finalize()
}

/// The file's bytes for `snapshot`.
pub fn encode(snapshot: &Snapshot) -> Vec<u8> {
    let meta = bincode::serialize(&snapshot.meta).expect("snapshot metadata serializes");
    let data = &snapshot.data;
    let mut out = Vec::with_capacity(8 + 8 + meta.len() + 12 + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc(&meta).to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc(data).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// Parse a snapshot file's bytes: the snapshot, or the offset and reason of
/// the first thing wrong.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, (u64, String)> {
    let read = |at: u64, buf: &mut [u8]| -> io::Result<()> {
        buf.copy_from_slice(&bytes[at as usize..at as usize + buf.len()]);
        Ok(())
    };
    decode_from(bytes.len() as u64, read).map_err(|e| match e {
        Bad::At(offset, reason) => (offset, reason),
        Bad::Io(e) => (0, e.to_string()),
    })
}

/// What stops a snapshot file from being read.
enum Bad {
    /// The file is wrong at this offset.
    At(u64, String),
    /// The file could not be read.
    Io(io::Error),
}

/// Parse a snapshot file of `size` bytes read through `read_at`. Every
/// length in the file is checked against `size` before anything is
/// allocated, and trailing bytes are refused without being read.
fn decode_from(
    size: u64,
    read_at: impl Fn(u64, &mut [u8]) -> io::Result<()>,
) -> Result<Snapshot, Bad> {
    let need = |at: u64, n: u64, what: &str| -> Result<(), Bad> {
        if size < at + n {
            Err(Bad::At(
                at,
                format!(
                    "the file ends after {size} bytes, inside the {what} ({n} bytes from offset {at})"
                ),
            ))
        } else {
            Ok(())
        }
    };
    let read = |at: u64, n: usize| -> Result<Vec<u8>, Bad> {
        let mut buf = vec![0u8; n];
        read_at(at, &mut buf).map_err(Bad::Io)?;
        Ok(buf)
    };
    need(0, 8, "magic number")?;
    if read(0, 8)?.as_slice() != MAGIC {
        return Err(Bad::At(
            0,
            "not a faultline snapshot file (bad magic number)".into(),
        ));
    }
    need(8, 8, "metadata header")?;
    let head = read(8, 8)?;
    let meta_len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as u64;
    let meta_crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
    if meta_len > super::MAX_RECORD as u64 {
        return Err(Bad::At(
            8,
            format!("metadata length {meta_len} is implausible"),
        ));
    }
    need(16, meta_len, "metadata")?;
    let meta_bytes = read(16, meta_len as usize)?;
    if crc(&meta_bytes) != meta_crc {
        return Err(Bad::At(16, "metadata checksum mismatch".into()));
    }
    let meta: SnapshotMeta = bincode::deserialize(&meta_bytes)
        .map_err(|e| Bad::At(16, format!("undecodable metadata: {e}")))?;
    let at = 16 + meta_len;
    need(at, 12, "data header")?;
    let head = read(at, 12)?;
    let data_len = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
    let data_crc = u32::from_le_bytes(head[8..].try_into().expect("4 bytes"));
    if data_len > MAX_DATA {
        return Err(Bad::At(
            at,
            format!("data length {data_len} is implausible"),
        ));
    }
    let start = at + 12;
    need(start, data_len, "state-machine data")?;
    let end = start + data_len;
    if end != size {
        return Err(Bad::At(
            end,
            format!("{} unexpected bytes after the data", size - end),
        ));
    }
    let data = read(start, data_len as usize)?;
    if crc(&data) != data_crc {
        return Err(Bad::At(
            start,
            "state-machine data checksum mismatch".into(),
        ));
    }
    Ok(Snapshot {
        meta,
        data: Arc::new(data),
    })
}

/// Store `snapshot` as `dir/snapshot`, atomically and durably.
pub fn write(dir: &Path, snapshot: &Snapshot) -> Result<(), StorageError> {
    write_with(dir, snapshot, true)
}

/// [`write`]; without `sync_dir`, the rename is not made durable (UNSAFE
/// no-dir-fsync only).
pub(super) fn write_with(
    dir: &Path,
    snapshot: &Snapshot,
    sync_the_dir: bool,
) -> Result<(), StorageError> {
    let tmp = dir.join("snapshot.tmp");
    let path = dir.join("snapshot");
    {
        let f = File::create(&tmp).map_err(io_err("creating", &tmp))?;
        f.write_all_at(&encode(snapshot), 0)
            .map_err(io_err("writing", &tmp))?;
        f.sync_all().map_err(io_err("syncing", &tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io_err("renaming", &path))?;
    if !sync_the_dir {
        // UNSAFE no-dir-fsync: the rename is left to chance.
        return Ok(());
    }
    sync_dir(dir)
}

/// Read `dir/snapshot` (none when absent). A `snapshot.tmp` left by a crash
/// in the middle of writing is removed: the rename never happened, so the
/// snapshot it was to become was never relied on.
pub fn read(dir: &Path) -> Result<Option<Snapshot>, StorageError> {
    let tmp = dir.join("snapshot.tmp");
    if tmp.exists() {
        tracing::warn!(file = %tmp.display(), "removing a snapshot left half-written by a crash");
        fs::remove_file(&tmp).map_err(io_err("removing", &tmp))?;
    }
    let path = dir.join("snapshot");
    let Some(file) = super::regular::open(&path, false, false)? else {
        return Ok(None);
    };
    let size = super::regular::size(&file, &path)?;
    match decode_from(size, |at, buf| file.read_exact_at(buf, at)) {
        Ok(s) => Ok(Some(s)),
        Err(Bad::At(offset, reason)) => Err(StorageError::Corrupt {
            path,
            offset,
            reason,
        }),
        Err(Bad::Io(e)) => Err(io_err("reading", &path)(e)),
    }
}
