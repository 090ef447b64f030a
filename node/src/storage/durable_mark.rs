//! The durable mark: the highest log index this node has made durable,
//! kept in the file `durable` (one record as in the log, its payload the
//! index), rewritten in place and fsynced after each log write that moved
//! the log's end, before anything is acknowledged.
//!
//! Why: a log file that ends early looks the same whether a crash tore an
//! append that was never acknowledged (harmless) or the disk lost records
//! that were fsynced and perhaps acknowledged (outside Raft's fault model:
//! a node that lost entries could vote for a candidate that lacks committed
//! ones). The mark tells the two apart (Alagappan et al., "Protocol-Aware
//! Recovery for Consensus-Based Storage", FAST 2018, make the same
//! distinction). It is written after the log's fsync, so it never claims
//! more than the log held; it is lowered before a truncation, so a
//! legitimate truncation never looks like a loss.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::log_file::{encode_payload, parse_record};
use super::{io_err, regular, StorageError};

/// The file's name in the data directory.
pub const FILE: &str = "durable";

/// The open mark.
pub struct DurableMark {
    path: PathBuf,
    file: File,
    value: u64,
    buf: Vec<u8>,
}

/// Read the mark of `dir`: `None` when there is none or it is damaged (said
/// in a warning): then a short log is judged by its records alone.
pub fn read(dir: &Path) -> Result<Option<u64>, StorageError> {
    let path = dir.join(FILE);
    let Some(data) = regular::read_small(&path, 64)? else {
        return Ok(None);
    };
    let value = parse_record(&data, 0)
        .ok()
        .filter(|&(_, e)| e == data.len())
        .and_then(|(s, e)| bincode::deserialize::<u64>(&data[s..e]).ok());
    if value.is_none() && !data.is_empty() {
        tracing::warn!(file = %path.display(), "the durable mark does not check out; judging the log by its records alone");
    }
    Ok(value)
}

impl DurableMark {
    /// Open (creating) the mark of `dir`, which holds `value`.
    pub fn open(dir: &Path, value: u64) -> Result<DurableMark, StorageError> {
        let path = dir.join(FILE);
        let file = regular::open(&path, true, true)?.expect("created when missing");
        let mut mark = DurableMark {
            path,
            file,
            value: u64::MAX,
            buf: Vec::new(),
        };
        mark.set(value)?;
        Ok(mark)
    }

    /// The index it holds.
    pub fn value(&self) -> u64 {
        self.value
    }

    /// Make `value` the mark, durably (nothing when it already is).
    pub fn set(&mut self, value: u64) -> Result<(), StorageError> {
        if value == self.value {
            return Ok(());
        }
        self.buf.clear();
        encode_payload(
            &bincode::serialize(&value).expect("an index serializes"),
            &mut self.buf,
        );
        self.file
            .write_all_at(&self.buf, 0)
            .map_err(io_err("writing", &self.path))?;
        self.file
            .set_len(self.buf.len() as u64)
            .map_err(io_err("truncating", &self.path))?;
        self.file
            .sync_data()
            .map_err(io_err("syncing", &self.path))?;
        self.value = value;
        Ok(())
    }
}
