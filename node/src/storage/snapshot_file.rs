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
    let need = |at: usize, n: usize, what: &str| -> Result<(), (u64, String)> {
        if bytes.len() < at + n {
            Err((
                at as u64,
                format!(
                    "the file ends after {} bytes, inside the {what} ({n} bytes from offset {at})",
                    bytes.len()
                ),
            ))
        } else {
            Ok(())
        }
    };
    need(0, 8, "magic number")?;
    if &bytes[..8] != MAGIC {
        return Err((0, "not a faultline snapshot file (bad magic number)".into()));
    }
    need(8, 8, "metadata header")?;
    let meta_len = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
    let meta_crc = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    if meta_len > super::MAX_RECORD {
        return Err((8, format!("metadata length {meta_len} is implausible")));
    }
    need(16, meta_len, "metadata")?;
    let meta_bytes = &bytes[16..16 + meta_len];
    if crc(meta_bytes) != meta_crc {
        return Err((16, "metadata checksum mismatch".into()));
    }
    let meta: SnapshotMeta =
        bincode::deserialize(meta_bytes).map_err(|e| (16, format!("undecodable metadata: {e}")))?;
    let at = 16 + meta_len;
    need(at, 12, "data header")?;
    let data_len = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let data_crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes"));
    if data_len > MAX_DATA {
        return Err((at as u64, format!("data length {data_len} is implausible")));
    }
    let start = at + 12;
    need(start, data_len as usize, "state-machine data")?;
    let end = start + data_len as usize;
    let data = &bytes[start..end];
    if crc(data) != data_crc {
        return Err((start as u64, "state-machine data checksum mismatch".into()));
    }
    if end != bytes.len() {
        return Err((
            end as u64,
            format!("{} unexpected bytes after the data", bytes.len() - end),
        ));
    }
    Ok(Snapshot {
        meta,
        data: Arc::new(data.to_vec()),
    })
}

/// Store `snapshot` as `dir/snapshot`, atomically and durably.
pub fn write(dir: &Path, snapshot: &Snapshot) -> Result<(), StorageError> {
    let tmp = dir.join("snapshot.tmp");
    let path = dir.join("snapshot");
    {
        let f = File::create(&tmp).map_err(io_err("creating", &tmp))?;
        f.write_all_at(&encode(snapshot), 0)
            .map_err(io_err("writing", &tmp))?;
        f.sync_all().map_err(io_err("syncing", &tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io_err("renaming", &path))?;
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
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("reading", &path)(e)),
    };
    decode(&bytes)
        .map(Some)
        .map_err(|(offset, reason)| StorageError::Corrupt {
            path,
            offset,
            reason,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::{Configuration, Membership};

    fn snap(n: usize) -> Snapshot {
        let mut membership = Membership::from_config(Configuration {
            incoming: ["n1", "n2"].iter().map(|s| s.to_string()).collect(),
            outgoing: ["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect(),
        });
        membership.learners.insert("n4".into());
        Snapshot {
            meta: SnapshotMeta {
                index: 42,
                term: 7,
                membership,
                membership_index: 40,
            },
            data: Arc::new((0..n).map(|i| (i * 7) as u8).collect()),
        }
    }

    #[test]
    fn a_snapshot_survives_writing_and_reading_with_its_joint_configuration() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let s = snap(10_000);
        write(dir.path(), &s).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(s));
        assert!(!dir.path().join("snapshot.tmp").exists());
    }

    #[test]
    fn every_truncation_is_refused_with_an_offset() {
        let bytes = encode(&snap(100));
        for cut in 0..bytes.len() {
            let (offset, reason) = decode(&bytes[..cut]).expect_err("truncated");
            assert!(offset <= cut as u64, "cut {cut}: offset {offset}: {reason}");
            assert!(
                reason.contains("ends after") || reason.contains("magic"),
                "cut {cut}: {reason}"
            );
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_is_refused() {
        let bytes = encode(&snap(100));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(decode(&b).is_err(), "bit flip at byte {i} went unnoticed");
        }
        let mut b = bytes.clone();
        b.push(0);
        let (offset, reason) = decode(&b).unwrap_err();
        assert_eq!(offset as usize, bytes.len());
        assert!(reason.contains("after the data"), "{reason}");
    }

    #[test]
    fn a_corrupt_file_names_the_file_and_offset_and_a_torn_temporary_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let s = snap(100);
        write(dir.path(), &s).unwrap();
        // A crash while writing the next one: a torn temporary file.
        fs::write(dir.path().join("snapshot.tmp"), &encode(&snap(50))[..30]).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(s));
        assert!(!dir.path().join("snapshot.tmp").exists());
        // Damage to the real file: refused, with where.
        let path = dir.path().join("snapshot");
        let mut b = fs::read(&path).unwrap();
        let last = b.len() - 1;
        b[last] ^= 1;
        fs::write(&path, b).unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("snapshot: corrupt record at byte offset"),
            "{err}"
        );
        assert!(err.contains("data checksum mismatch"), "{err}");
    }
}
