//! Runs that differ only by their disk model: a setting that lists several
//! models becomes one setting per model, `NAME@MODEL`; these helpers find
//! the base name again, and pair such settings for `faultline compare`
//! once their runs' specs are seen to differ in nothing else.

use std::path::Path;

use faultline_rundir::spec::{DiskModel, RunSpec};
use faultline_rundir::RunDir;

use crate::campaign::LoadedCampaign;
use crate::rows::RunRow;

/// A setting's name without its `@MODEL` suffix.
pub fn base_setting(setting: &str, model: DiskModel) -> &str {
    setting
        .strip_suffix(model.name())
        .and_then(|s| s.strip_suffix('@'))
        .unwrap_or(setting)
}

/// The models a campaign's runs were judged by, in order of first
/// appearance (runs without disk faults have none).
pub fn models_of(rows: &[RunRow]) -> Vec<DiskModel> {
    let mut out = Vec::new();
    for m in rows.iter().filter_map(|r| r.disk_model) {
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out
}

/// Each setting's disk model, from its first run that has one.
fn setting_models(c: &LoadedCampaign) -> Vec<(String, DiskModel)> {
    c.index
        .settings
        .iter()
        .filter_map(|s| {
            let m = c
                .rows
                .iter()
                .find(|r| r.setting == s.name && r.disk_model.is_some())?
                .disk_model?;
            Some((s.name.clone(), m))
        })
        .collect()
}

/// The spec of the first run of `setting` under `fault`.
fn spec_of(dir: &Path, c: &LoadedCampaign, setting: &str, fault: &str) -> Option<RunSpec> {
    let run = c
        .index
        .runs
        .iter()
        .find(|r| r.setting == setting && r.fault == fault)?;
    RunSpec::read(&RunDir::new(dir.join(&run.dir))).ok()?
}

/// Whether two runs' specs differ in nothing but the disk model (and what
/// may differ between runs of one cluster under the same faults: the
/// setting's name, the seed, what the run was expected to show, and what
/// it wrote of the system it found).
pub fn differ_only_by_model(a: &RunSpec, b: &RunSpec) -> bool {
    let plain = |s: &RunSpec| {
        let mut s = s.clone();
        s.setting.clear();
        s.seed = 0;
        s.disk_model = DiskModel::default();
        s.expect = Default::default();
        s.target_version = None;
        s.effective = None;
        serde_json::to_value(s).ok()
    };
    plain(a).is_some() && plain(a) == plain(b)
}

/// Settings of A and B with the same base name and different disk models,
/// whose runs of a fault both ran differ only by the model. When A and B
/// are one campaign, each base name's first model is paired with each of
/// its others.
pub fn model_pairs(
    (a_dir, a): (&Path, &LoadedCampaign),
    (b_dir, b): (&Path, &LoadedCampaign),
    same: bool,
) -> Vec<(String, String)> {
    let (ma, mb) = (setting_models(a), setting_models(b));
    let mut out = Vec::new();
    for (i, (sa, xa)) in ma.iter().enumerate() {
        for (j, (sb, xb)) in mb.iter().enumerate() {
            if xa == xb || base_setting(sa, *xa) != base_setting(sb, *xb) {
                continue;
            }
            if same {
                // The first of this base name's settings, paired forward.
                let first = ma
                    .iter()
                    .position(|(s, m)| base_setting(s, *m) == base_setting(sa, *xa));
                if first != Some(i) || j <= i {
                    continue;
                }
            }
            let fault = a
                .index
                .runs
                .iter()
                .filter(|r| &r.setting == sa)
                .map(|r| &r.fault)
                .find(|f| {
                    b.index
                        .runs
                        .iter()
                        .any(|r| &r.setting == sb && &r.fault == *f)
                });
            let only_model =
                fault.is_some_and(
                    |f| match (spec_of(a_dir, a, sa, f), spec_of(b_dir, b, sb, f)) {
                        (Some(x), Some(y)) => differ_only_by_model(&x, &y),
                        _ => false,
                    },
                );
            if only_model {
                out.push((sa.clone(), sb.clone()));
            }
        }
    }
    out
}

/// The settings of the campaign in `dir` that differ only by disk model,
/// paired as `faultline compare DIR` pairs them.
pub fn own_model_pairs(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let c = crate::campaign::load_campaign(dir)?;
    Ok(model_pairs((dir, &c), (dir, &c), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_name_drops_only_the_runs_own_model() {
        assert_eq!(base_setting("etcd@posix", DiskModel::Posix), "etcd");
        assert_eq!(base_setting("etcd@journaled", DiskModel::Journaled), "etcd");
        assert_eq!(
            base_setting("etcd@posix", DiskModel::Journaled),
            "etcd@posix"
        );
        assert_eq!(base_setting("posix", DiskModel::Posix), "posix");
    }

    #[test]
    fn specs_differ_only_by_model_unless_anything_else_differs() {
        let a = RunSpec {
            setting: "x@posix".into(),
            seed: 1,
            ..RunSpec::default()
        };
        let b = RunSpec {
            setting: "x@journaled".into(),
            seed: 2,
            disk_model: DiskModel::Journaled,
            ..RunSpec::default()
        };
        assert!(differ_only_by_model(&a, &b));
        let c = RunSpec {
            nodes: 5,
            ..b.clone()
        };
        assert!(!differ_only_by_model(&a, &c));
    }
}
