//! The log file's records, and reading a log back without holding its
//! bytes: records are read one at a time through a bounded window.
//!
//! Record: `len: u32 LE | crc32(len ‖ payload): u32 LE | payload`, the
//! payload the bincode encoding of an [`Entry`].
//!
//! A record that does not check out is described by [`BadRecord`], which
//! says whether it looks like a torn write (the file ends inside it, or a
//! whole sector of it was never written and reads as zeros — what a crash
//! in the middle of an append leaves, the rule etcd's WAL uses too) or like
//! damage of a record that was once written whole (a checksum mismatch
//! over written bytes, a length that a single bit flip would make fit).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::raft::Entry;

/// Bytes before a record's payload.
pub const HEADER: usize = 8;
/// The largest record accepted (an entry is a small command).
pub const MAX_RECORD: usize = 64 << 20;
/// Torn writes are judged per disk sector.
const SECTOR: u64 = 512;
/// Bytes read from the file at a time while scanning.
const WINDOW: usize = 1 << 20;

pub(super) fn crc_of(len: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len);
    h.update(payload);
    h.finalize()
}

/// Append `payload` as one record to `out`.
pub(super) fn encode_payload(payload: &[u8], out: &mut Vec<u8>) {
    let len = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc_of(&len, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Append `entry` as one record to `out`.
pub(super) fn encode_record(entry: &Entry, out: &mut Vec<u8>) {
    let payload = bincode::serialize(entry).expect("entries always serialize");
    encode_payload(&payload, out);
}

/// Parse one record at `at` of an in-memory file: the payload range, or
/// why it is not a record.
pub(super) fn parse_record(data: &[u8], at: usize) -> Result<(usize, usize), String> {
    if data.len() - at < HEADER {
        return Err(format!(
            "{} bytes where a record header needs {HEADER}",
            data.len() - at
        ));
    }
    let len = u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(data[at + 4..at + 8].try_into().expect("4 bytes"));
    if len > MAX_RECORD {
        return Err(format!(
            "record length {len} exceeds the maximum {MAX_RECORD}"
        ));
    }
    let start = at + HEADER;
    if data.len() - start < len {
        return Err(format!(
            "record of {len} bytes runs past the end of the file"
        ));
    }
    if crc_of(&data[at..at + 4], &data[start..start + len]) != crc {
        return Err("checksum mismatch".into());
    }
    Ok((start, start + len))
}

/// A record that does not check out.
#[derive(Debug)]
pub(super) struct BadRecord {
    /// Where it starts.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
    /// Whether it looks like a torn write rather than damage.
    pub torn: bool,
}

/// A log file read back.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// The entries of the intact records, in file order.
    pub entries: Vec<Entry>,
    /// Where each of them starts.
    pub offsets: Vec<u64>,
    /// Where the intact records end.
    pub end: u64,
    /// The first record that does not check out, if any.
    pub bad: Option<BadRecord>,
}

/// Reads a file through one bounded buffer.
struct Window<'a> {
    file: &'a File,
    size: u64,
    base: u64,
    buf: Vec<u8>,
}

impl<'a> Window<'a> {
    fn new(file: &'a File, size: u64) -> Self {
        Window {
            file,
            size,
            base: 0,
            buf: Vec::new(),
        }
    }

    /// `len` bytes at `at`; the caller checked that they lie in the file.
    fn bytes(&mut self, at: u64, len: usize) -> io::Result<&[u8]> {
        debug_assert!(at + len as u64 <= self.size);
        let have = at >= self.base && at + len as u64 <= self.base + self.buf.len() as u64;
        if !have {
            let want = (len.max(WINDOW) as u64).min(self.size - at) as usize;
            self.buf.clear();
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, at)?;
            self.base = at;
        }
        let from = (at - self.base) as usize;
        Ok(&self.buf[from..from + len])
    }

    /// The record at `at`: its entry and where the next starts.
    fn record(&mut self, at: u64) -> io::Result<Result<(Entry, u64), BadRecord>> {
        let size = self.size;
        let bad = |reason: String, torn: bool| {
            Ok(Err(BadRecord {
                offset: at,
                reason,
                torn,
            }))
        };
        if size - at < HEADER as u64 {
            return bad(
                format!("{} bytes where a record header needs {HEADER}", size - at),
                true,
            );
        }
        let head = self.bytes(at, HEADER)?;
        let len_bytes: [u8; 4] = head[..4].try_into().expect("4 bytes");
        let len = u32::from_le_bytes(len_bytes) as usize;
        let crc = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
        let fits = |l: usize| l <= MAX_RECORD && at + (HEADER + l) as u64 <= size;
        if !fits(len) {
            let what = if len > MAX_RECORD {
                format!("record length {len} exceeds the maximum {MAX_RECORD}")
            } else {
                format!("record of {len} bytes runs past the end of the file")
            };
            // A length one bit away from one whose record checks out is a
            // flipped bit in a record that was written whole.
            for bit in 0..32 {
                let l = len ^ (1 << bit);
                if fits(l) {
                    let payload = self.bytes(at + HEADER as u64, l)?;
                    if crc_of(&(l as u32).to_le_bytes(), payload) == crc {
                        return bad(
                            format!("{what}: its length field has a flipped bit (the record of {l} bytes checks out)"),
                            false,
                        );
                    }
                }
            }
            return bad(what, true);
        }
        let record = self.bytes(at, HEADER + len)?;
        if crc_of(&len_bytes, &record[HEADER..]) != crc {
            let torn = has_zero_sector(at, record);
            return bad("checksum mismatch".into(), torn);
        }
        match bincode::deserialize::<Entry>(&record[HEADER..]) {
            Ok(entry) => Ok(Ok((entry, at + (HEADER + len) as u64))),
            Err(e) => bad(format!("undecodable entry: {e}"), false),
        }
    }
}

/// Whether a whole sector-aligned piece of `record` (at file offset `at`)
/// is zeros: never written, as a crash in the middle of an append leaves it.
fn has_zero_sector(at: u64, record: &[u8]) -> bool {
    let end = at + record.len() as u64;
    let mut from = at;
    while from < end {
        let to = ((from / SECTOR + 1) * SECTOR).min(end);
        let piece = &record[(from - at) as usize..(to - at) as usize];
        if piece.iter().all(|&b| b == 0) {
            return true;
        }
        from = to;
    }
    false
}

/// Read every record of `file` (of `size` bytes) up to the first that does
/// not check out.
pub(super) fn scan(file: &File, size: u64) -> io::Result<Scan> {
    let mut window = Window::new(file, size);
    let mut out = Scan::default();
    let mut at = 0u64;
    while at < size {
        match window.record(at)? {
            Ok((entry, next)) => {
                out.offsets.push(at);
                out.entries.push(entry);
                at = next;
            }
            Err(bad) => {
                out.bad = Some(bad);
                break;
            }
        }
    }
    out.end = at;
    Ok(out)
}

/// Where the first intact record after `from` starts, if any: a damaged
/// record followed by intact ones is damage, never a torn tail.
pub(super) fn intact_record_after(file: &File, size: u64, from: u64) -> io::Result<Option<u64>> {
    let mut window = Window::new(file, size);
    let mut at = from + 1;
    while at + HEADER as u64 <= size {
        let head = window.bytes(at, HEADER)?;
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        if len <= MAX_RECORD && at + (HEADER + len) as u64 <= size && window.record(at)?.is_ok() {
            return Ok(Some(at));
        }
        at += 1;
    }
    Ok(None)
}
