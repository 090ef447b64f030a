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
    format!("{}__{}__{}", slug(setting), slug(fault), repeat)
}

/// Create a new campaign directory in `store` and point `store/latest` at it.
pub fn create_campaign_dir(store: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = store.join(format!("{}-{}", slug(name), stamp()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    point_latest(store, &dir);
    Ok(dir)
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
}
