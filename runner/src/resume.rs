//! `faultline campaign FILE --resume STORE/<campaign>`: run only the runs
//! of a campaign that are missing or were interrupted (a run directory
//! without its `results.json`). The campaign file must plan exactly the
//! runs the directory's `campaign.json` lists (same directories, seeds,
//! settings and faults); an interrupted run's directory is moved to
//! `.interrupted/` in the campaign, never deleted.

use std::path::Path;

use anyhow::Context;
use faultline_results::CampaignIndex;
use faultline_rundir::records::{read_record, ProgressRecord};
use faultline_rundir::CampaignDir;

use crate::campaign::PlannedRun;
use crate::store::shown;

/// Where interrupted runs' directories go, inside the campaign.
pub const SET_ASIDE: &str = ".interrupted";

/// What is left to do in a campaign directory.
#[derive(Debug)]
pub struct Leftover {
    /// The indices of the runs to run.
    pub todo: Vec<usize>,
    /// The interrupted runs' directories, moved under [`SET_ASIDE`].
    pub set_aside: Vec<String>,
}

/// Check that `dir` holds the campaign `runs` plan, refuse one that is
/// still running, move interrupted runs aside and list what is left.
pub fn leftover(dir: &Path, runs: &[PlannedRun]) -> anyhow::Result<Leftover> {
    let campaign = CampaignDir::new(dir);
    let index: CampaignIndex = read_record(&campaign.campaign())
        .map_err(anyhow::Error::msg)?
        .with_context(|| {
            format!(
                "{} holds no campaign.json: --resume takes a campaign's directory in the store",
                dir.display()
            )
        })?;
    anyhow::ensure!(
        index.runs.len() == runs.len(),
        "{} has {} runs and the campaign file plans {}: give the campaign file it was started with",
        dir.display(),
        index.runs.len(),
        runs.len()
    );
    for (stored, planned) in index.runs.iter().zip(runs) {
        let same = stored.dir == planned.dir
            && stored.seed == planned.plan.seed
            && stored.setting == planned.plan.stored.setting
            && stored.fault == planned.fault
            && stored.repeat == planned.repeat;
        anyhow::ensure!(
            same,
            "{}: its run {} differs from the campaign file's run {} (directory, seed, setting, fault or repeat): give the campaign file it was started with",
            dir.display(),
            shown(&stored.dir),
            shown(&planned.dir)
        );
    }
    if let Ok(Some(p)) = ProgressRecord::read(&campaign) {
        anyhow::ensure!(
            !p.live(),
            "{} is still running (controller pid {}): stop it first",
            dir.display(),
            p.pid
        );
    }
    let mut todo = Vec::new();
    let mut set_aside = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let run = campaign.run(&r.dir);
        if run.results().exists() {
            continue;
        }
        // A copy from a worker that was cut short.
        let _ = std::fs::remove_dir_all(dir.join(format!(".incoming-{}", r.dir)));
        if run.path().exists() {
            let aside = dir.join(SET_ASIDE);
            set_aside_dir(&aside)?;
            let name = (1..=1000)
                .map(|n| match n {
                    1 => r.dir.clone(),
                    n => format!("{}-{n}", r.dir),
                })
                .find(|n| !aside.join(n).exists())
                .context("1000 interrupted copies of one run")?;
            std::fs::rename(run.path(), aside.join(&name))
                .with_context(|| format!("moving {} aside", run.path().display()))?;
            set_aside.push(format!("{SET_ASIDE}/{name}"));
        }
        todo.push(i);
    }
    Ok(Leftover { todo, set_aside })
}

/// Make `aside` a directory of the campaign's own, or find it one: a link
/// in its place (which would move the interrupted run out of the store)
/// or a file is refused, not followed.
fn set_aside_dir(aside: &Path) -> anyhow::Result<()> {
    match std::fs::create_dir(aside) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = std::fs::symlink_metadata(aside)
                .with_context(|| format!("reading {}", aside.display()))?;
            anyhow::ensure!(
                meta.is_dir(),
                "{} is a link or not a directory: the interrupted runs are moved only inside the campaign",
                aside.display()
            );
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", aside.display())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_link_in_place_of_the_set_aside_directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let camp = d.path().join("c");
        std::fs::create_dir(&camp).unwrap();
        let aside = camp.join(super::SET_ASIDE);
        std::os::unix::fs::symlink(&outside, &aside).unwrap();
        let e = super::set_aside_dir(&aside).unwrap_err().to_string();
        assert!(e.contains("is a link or not a directory"), "{e}");
        std::fs::remove_file(&aside).unwrap();
        super::set_aside_dir(&aside).unwrap();
        super::set_aside_dir(&aside).unwrap();
        assert!(std::fs::symlink_metadata(&aside).unwrap().is_dir());
    }
}
