//! Reading the store's files as hostile input: anyone can put a FIFO, a
//! link to `/dev/zero` or a sparse file of many gigabytes where a record
//! should be. Every reader of a store file goes through here: the file is
//! opened without blocking and must be a regular file (a FIFO or device is
//! refused before a byte is read), and what is read is bounded by the kind
//! of file (a record whole only below its limit; logs and other line files
//! one bounded line at a time).

use std::io::{BufRead, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The most a JSON record of the store (`results.json`, `campaign.json`,
/// `disk.json`, …) may hold: the largest seen is a few MiB (a campaign of
/// thousands of runs, a counterexample with its witnesses).
pub const RECORD_LIMIT: u64 = 64 << 20;
/// The most a small record (`progress.json`, `placement.json`,
/// `hosts.json`, `spec.json`) may hold.
pub const SMALL_RECORD_LIMIT: u64 = 4 << 20;
/// The longest line of a line file (a log, `status.jsonl`): a longer one
/// is skipped, never held whole.
pub const LINE_LIMIT: usize = 1 << 20;
/// The most of a line file read: a member's log is capped below this by
/// the run that writes it.
pub const LINES_LIMIT: u64 = 1 << 30;

/// The limit for the record at `path`, by its name.
pub fn record_limit(path: &Path) -> u64 {
    match path.file_name().and_then(|n| n.to_str()) {
        Some(crate::PROGRESS | crate::PLACEMENT | crate::HOSTS | crate::SPEC) => SMALL_RECORD_LIMIT,
        _ => RECORD_LIMIT,
    }
}

/// What a path is, when it is not a regular file.
fn kind_of(t: &std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// Open `path` for reading without blocking (a FIFO does not wait for a
/// writer), and refuse anything but a regular file. Returns the file and
/// its size.
pub fn open_regular(path: &Path) -> std::io::Result<(std::fs::File, u64)> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{} is {}, not a regular file",
                path.display(),
                kind_of(&meta.file_type())
            ),
        ));
    }
    Ok((f, meta.len()))
}

/// The whole text of `path`, at most `limit` bytes: none when it is not
/// there; an error naming the file when it is not a regular file, is
/// larger than `limit`, or is not UTF-8.
pub fn read_text_limited(path: &Path, limit: u64) -> Result<Option<String>, String> {
    let (f, len) = match open_regular(path) {
        Ok(x) => x,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => return Err(e.to_string()),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    if len > limit {
        return Err(format!(
            "{} is {len} bytes, over the {limit} bytes a file of its kind may hold",
            path.display()
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // The file may grow while it is read: never past the limit.
    f.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "{} grew over the {limit} bytes a file of its kind may hold while it was read",
            path.display()
        ));
    }
    String::from_utf8(bytes).map(Some).map_err(|e| {
        format!(
            "reading {}: not UTF-8 at byte {}",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// The whole text of the record at `path`, bounded by [`record_limit`].
pub fn read_text(path: &Path) -> Result<Option<String>, String> {
    read_text_limited(path, record_limit(path))
}

/// Call `each` with every line of `path` (without its newline), reading at
/// most [`LINES_LIMIT`] bytes one line at a time; a line longer than
/// [`LINE_LIMIT`] or not UTF-8 is skipped. Returns false when the file is
/// not there; an error naming the file when it is not a regular file.
pub fn for_each_line(path: &Path, mut each: impl FnMut(&str)) -> Result<bool, String> {
    let f = match open_regular(path) {
        Ok((f, _)) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => return Err(e.to_string()),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let mut r = std::io::BufReader::with_capacity(64 << 10, f.take(LINES_LIMIT));
    let mut line = Vec::new();
    loop {
        line.clear();
        let (n, whole) = read_line_bounded(&mut r, &mut line, LINE_LIMIT)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        if n == 0 {
            return Ok(true);
        }
        if !whole {
            continue;
        }
        if let Ok(text) = std::str::from_utf8(&line) {
            each(text.trim_end_matches(['\n', '\r']));
        }
    }
}

/// Read one line of `r` into `buf`, keeping at most `limit` bytes of it:
/// returns the bytes consumed (0 at the end) and whether the line fitted.
/// A longer line is consumed to its end without being held.
pub fn read_line_bounded(
    r: &mut impl BufRead,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut fits = true;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok((consumed, fits));
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if fits && buf.len() + take <= limit {
            buf.extend_from_slice(&avail[..take]);
        } else {
            fits = false;
            buf.clear();
        }
        r.consume(take);
        consumed += take;
        if done {
            return Ok((consumed, fits));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_or_a_device_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("results.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_text(&fifo).unwrap_err();
        assert!(e.contains("is a FIFO, not a regular file"), "{e}");
        let e = for_each_line(&fifo, |_| {}).unwrap_err();
        assert!(e.contains("FIFO"), "{e}");
        let zero = dir.path().join("history.jsonl");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = read_text(&zero).unwrap_err();
        assert!(e.contains("a character device"), "{e}");
        assert_eq!(read_text(&dir.path().join("missing.json")), Ok(None));
    }

    #[test]
    fn a_record_over_its_limit_is_refused_by_its_size_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("results.json");
        let f = std::fs::File::create(&p).unwrap();
        // Sparse: 500 MB that take no room, and must not take memory.
        f.set_len(500_000_000).unwrap();
        let e = read_text(&p).unwrap_err();
        assert!(e.contains("500000000 bytes, over the"), "{e}");
        let small = dir.path().join("progress.json");
        std::fs::File::create(&small)
            .unwrap()
            .set_len(SMALL_RECORD_LIMIT + 1)
            .unwrap();
        assert!(read_text(&small).is_err());
        std::fs::write(&p, "{}").unwrap();
        assert_eq!(read_text(&p).unwrap().as_deref(), Some("{}"));
    }

    #[test]
    fn long_lines_are_skipped_not_held() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n1.log");
        let mut text = String::from("first\n");
        text.push_str(&"x".repeat(LINE_LIMIT + 10));
        text.push_str("\nlast");
        std::fs::write(&p, text).unwrap();
        let mut seen = Vec::new();
        assert!(for_each_line(&p, |l| seen.push(l.to_string())).unwrap());
        assert_eq!(seen, ["first", "last"]);
        assert!(!for_each_line(&dir.path().join("none.log"), |_| {}).unwrap());
    }
}
