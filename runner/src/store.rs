//! The store's layout: `STORE/<campaign>-<UTC time>/` per campaign (a
//! `faultline run` is a one-run campaign named `run`), one directory per run
//! inside it named `<setting>__<fault>__<repeat>`, and `STORE/latest`, a
//! link to the newest campaign. `docs/campaigns.md` lists the files.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// A name made safe for a directory: ASCII letters, digits and dots stay,
/// everything else becomes `-`.
pub fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The current UTC time as `YYYYmmdd-HHMMSS`, for directory names.
pub fn stamp() -> String {
    chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string()
}

/// The directory name of one run of a campaign.
pub fn run_dir_name(setting: &str, fault: &str, repeat: usize) -> String {
    format!("{}__{}__{}", slug(setting), fault_slug(fault), repeat)
}

/// A fault list's part of a directory name: its slug, or for a long list
/// the first 100 characters of it and a hash of the whole (a file name has
/// at most 255 bytes).
fn fault_slug(fault: &str) -> String {
    const MAX: usize = 100;
    let s = slug(fault);
    if s.len() <= MAX {
        return s;
    }
    // FNV-1a: stable across versions, unlike the standard library's hasher.
    let hash = fault.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{}-{hash:016x}", &s[..MAX])
}

/// The longest setting or campaign name, in characters: directory names
/// are built from them and a file name has at most 255 bytes.
pub const MAX_NAME_CHARS: usize = 64;

/// Check a setting's or campaign's name: 1 to [`MAX_NAME_CHARS`]
/// characters, no control or text-direction characters (which would garble
/// or disguise what a terminal shows).
pub fn check_name(what: &str, name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(!name.trim().is_empty(), "a {what} must not be empty");
    let chars = name.chars().count();
    anyhow::ensure!(
        chars <= MAX_NAME_CHARS,
        "{what} {} has {chars} characters; at most {MAX_NAME_CHARS} are allowed",
        shown(name)
    );
    anyhow::ensure!(
        !name.chars().any(faultline_rundir::quote::hidden_char),
        "{what} {} holds a control or text-direction character",
        shown(name)
    );
    Ok(())
}

pub use faultline_rundir::quote::quoted as shown;

/// The most campaign directories with one name started within one second.
const SAME_SECOND: usize = 100;

/// Create a new campaign directory in `store` and point `store/latest` at
/// it. The directory is always a new one: two campaigns started in the same
/// second get `NAME-TIME` and `NAME-TIME-2`.
pub fn create_campaign_dir(store: &Path, name: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(store).with_context(|| format!("creating {}", store.display()))?;
    let base = format!("{}-{}", slug(name), stamp());
    for n in 1..=SAME_SECOND {
        let dir = match n {
            1 => store.join(&base),
            _ => store.join(format!("{base}-{n}")),
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                point_latest(store, &dir);
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    anyhow::bail!(
        "{}: {SAME_SECOND} campaigns named {} started this second already",
        store.display(),
        shown(name)
    )
}

/// Create a run's directory, refusing one that exists: a run never writes
/// into another run's files.
pub fn create_run_dir(dir: &Path) -> anyhow::Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::create_dir(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} exists already: a run never reuses another run's directory",
                dir.display()
            )
        } else {
            anyhow::Error::new(e).context(format!("creating {}", dir.display()))
        }
    })
}

/// Point `store/latest` at `dir` (best effort: a store on a file system
/// without links still works, it only lacks the shortcut).
fn point_latest(store: &Path, dir: &Path) {
    let link = store.join("latest");
    let _ = std::fs::remove_file(&link);
    if let Some(name) = dir.file_name() {
        let _ = std::os::unix::fs::symlink(name, &link);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_latest_points_at_the_newest_campaign() {
        assert_eq!(slug("slow+prevote cq/1"), "slow-prevote-cq-1");
        assert_eq!(run_dir_name("fast", "loss:0.2", 3), "fast__loss-0.2__3");
        let s = stamp();
        assert_eq!(s.len(), 15, "{s}");
        assert_eq!(&s[8..9], "-");
        let store = tempfile::tempdir().unwrap();
        let dir = create_campaign_dir(store.path(), "demo").unwrap();
        assert!(dir.is_dir());
        let latest = std::fs::read_link(store.path().join("latest")).unwrap();
        assert_eq!(Some(latest.as_os_str()), dir.file_name());
    }

    #[test]
    fn campaigns_of_one_second_get_their_own_directories_and_runs_never_share_one() {
        let store = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = (0..3)
            .map(|_| create_campaign_dir(store.path(), "same").unwrap())
            .collect();
        assert_ne!(dirs[0], dirs[1]);
        assert_ne!(dirs[1], dirs[2]);
        let run = dirs[0].join("a__partition-leader__1");
        create_run_dir(&run).unwrap();
        let e = create_run_dir(&run).unwrap_err().to_string();
        assert!(e.contains("exists already"), "{e}");
    }

    #[test]
    fn long_fault_lists_get_short_distinct_directory_names() {
        let a = format!("{},crash-leader", "pause-leader,".repeat(40));
        let b = format!("{},crash", "pause-leader,".repeat(40));
        let (da, db) = (run_dir_name("s", &a, 1), run_dir_name("s", &b, 1));
        assert!(da.len() < 160, "{da}");
        assert_ne!(da, db);
    }

    #[test]
    fn names_are_bounded_and_free_of_hidden_characters() {
        assert!(check_name("setting name", "fast").is_ok());
        assert!(check_name("setting name", "").is_err());
        assert!(check_name("setting name", &"n".repeat(65)).is_err());
        let e = check_name("setting name", "a\u{202e}b")
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\u{202e}'), "{e}");
    }
}
