//! What a store holds, for its front page: every campaign, lone run and
//! comparison, newest first, each with what it is, how it went, and — for
//! a campaign under way — how far it has come.

use std::path::Path;

use faultline_checker::Verdict;
use faultline_rundir::records::{read_record, unix_ms, CampaignState, ProgressRecord};
use faultline_rundir::{CampaignDir, RunDir};
use serde::{Deserialize, Serialize};

use crate::campaign::CampaignIndex;
use faultline_rundir::spec::RunSpec;

/// What an entry of the store is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A campaign of several runs.
    Campaign,
    /// One run (`faultline run`, a one-run campaign, or a bare run directory).
    Run,
    /// Two campaigns compared (`faultline compare`).
    Comparison,
}

/// Where an entry stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryState {
    /// Under way now.
    Running,
    /// Every run ended.
    Finished,
    /// Stopped by Ctrl-C or SIGTERM.
    Interrupted,
    /// Its controller is gone without saying so (killed), or it never
    /// wrote its results.
    Stopped,
}

/// One entry of the store.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoreEntry {
    /// Its directory's name in the store.
    pub dir: String,
    /// What it is.
    pub kind: EntryKind,
    /// Its name (the campaign's, or `A vs B`).
    pub name: String,
    /// When it started, ms since the Unix epoch (its progress record, else
    /// its directory's time).
    pub started_unix_ms: u64,
    /// How long it ran, seconds (so far, while running).
    pub duration_s: Option<f64>,
    /// System under test.
    pub target: Option<String>,
    /// Network backend.
    pub net: Option<String>,
    /// Settings, faults and repeats.
    pub settings: usize,
    /// Fault columns.
    pub faults: usize,
    /// Most repeats of any cell.
    pub repeats: usize,
    /// Runs planned.
    pub runs: usize,
    /// Runs finished.
    pub done: usize,
    /// Where it stands.
    pub state: EntryState,
    /// Its verdict (none while running, or for a comparison).
    pub verdict: Option<Verdict>,
    /// The verdict against what the runs expected, in words
    /// (`as expected`, `2 unexpected`, `3 undecided`).
    pub judgement: Option<String>,
    /// `ok`, `bad` or `unk`: the colour of its verdict.
    pub colour: String,
    /// Seconds left, estimated, while running.
    pub seconds_left: Option<f64>,
    /// The last finished run's line, while running.
    pub last_line: Option<String>,
    /// Its page, relative to the store.
    pub link: String,
    /// What went wrong reading it, if anything (the entry is still listed).
    pub error: Option<String>,
}

impl StoreEntry {
    /// An entry of `kind` in directory `dir`, its page at `link`, started
    /// at `started_unix_ms`; nothing else known yet.
    fn new(dir: &str, kind: EntryKind, link: String, started_unix_ms: u64) -> StoreEntry {
        StoreEntry {
            dir: dir.to_string(),
            kind,
            name: dir.to_string(),
            started_unix_ms,
            duration_s: None,
            target: None,
            net: None,
            settings: 0,
            faults: 0,
            repeats: 0,
            runs: 0,
            done: 0,
            state: EntryState::Stopped,
            verdict: None,
            judgement: None,
            colour: "unk".into(),
            seconds_left: None,
            last_line: None,
            link,
            error: None,
        }
    }
}

fn modified_ms(p: &Path) -> Option<u64> {
    let t = std::fs::metadata(p).ok()?.modified().ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64)
}

/// The colour and words of a verdict against expectations.
fn judged(unexpected: usize, undecided: usize) -> (String, String) {
    if unexpected > 0 {
        ("bad".into(), format!("{unexpected} unexpected"))
    } else if undecided > 0 {
        ("unk".into(), format!("{undecided} undecided"))
    } else {
        ("ok".into(), "as expected".into())
    }
}

/// A campaign directory (a one-run campaign is listed as a run).
fn campaign_entry(dir: &Path, name: &str) -> StoreEntry {
    let cd = CampaignDir::new(dir);
    let mut e = StoreEntry::new(
        name,
        EntryKind::Campaign,
        format!("{name}/index.html"),
        modified_ms(&cd.campaign()).unwrap_or(0),
    );
    let index: CampaignIndex = match read_record(&cd.campaign()) {
        Ok(Some(i)) => i,
        Ok(None) => return e,
        Err(err) => {
            e.error = Some(err);
            return e;
        }
    };
    e.name = index.name.clone();
    e.settings = index.settings.len();
    e.faults = index.faults.len();
    e.repeats = index.runs.iter().map(|r| r.repeat).max().unwrap_or(0);
    e.runs = index.runs.len();
    e.done = index
        .runs
        .iter()
        .filter(|r| cd.run(&r.dir).results().exists())
        .count();
    if let Some(spec) = index
        .runs
        .iter()
        .find_map(|r| RunSpec::read(&cd.run(&r.dir)).ok().flatten())
    {
        e.target = Some(spec.target.to_string());
        e.net = Some(spec.net.to_string());
    }
    if index.runs.len() == 1 {
        e.kind = EntryKind::Run;
        e.link = format!("{name}/{}/index.html", index.runs[0].dir);
    }
    let progress = ProgressRecord::read(&cd).unwrap_or_else(|err| {
        e.error = Some(err);
        None
    });
    let results: Option<crate::campaign::CampaignResults> = read_record(&cd.results())
        .unwrap_or_else(|err| {
            e.error = Some(err);
            None
        });
    match &progress {
        Some(p) => {
            e.started_unix_ms = p.started_unix_ms;
            e.state = match p.state {
                CampaignState::Running if p.live() => EntryState::Running,
                CampaignState::Running => EntryState::Stopped,
                CampaignState::Finished => EntryState::Finished,
                CampaignState::Interrupted => EntryState::Interrupted,
            };
            let end = if e.state == EntryState::Running {
                unix_ms()
            } else {
                p.updated_unix_ms
            };
            e.duration_s = Some(end.saturating_sub(p.started_unix_ms) as f64 / 1e3);
            if e.state == EntryState::Running {
                e.seconds_left = Some(p.seconds_left());
                e.last_line = p.last_line.clone();
            }
        }
        None => {
            // A campaign from before progress records: finished when it
            // has its results.
            if results.is_some() {
                e.state = EntryState::Finished;
                e.duration_s = modified_ms(&cd.results())
                    .map(|end| end.saturating_sub(e.started_unix_ms) as f64 / 1e3);
            }
        }
    }
    if e.state != EntryState::Running {
        if let Some(r) = results {
            let (colour, words) = judged(r.unexpected.len(), r.undecided.len());
            e.verdict = Some(r.valid);
            e.colour = colour;
            e.judgement = Some(words);
        }
    }
    if e.state == EntryState::Running {
        e.colour = "run".into();
    }
    e
}

/// A bare run directory (a history without a campaign around it).
fn run_entry(dir: &Path, name: &str) -> StoreEntry {
    let rd = RunDir::new(dir);
    let spec = RunSpec::read(&rd).ok().flatten();
    let mut e = StoreEntry::new(
        name,
        EntryKind::Run,
        format!("{name}/index.html"),
        modified_ms(&rd.spec())
            .or_else(|| modified_ms(&rd.history()))
            .unwrap_or(0),
    );
    e.duration_s = spec.as_ref().map(|s| s.time_limit_s);
    e.target = spec.as_ref().map(|s| s.target.to_string());
    e.net = spec.as_ref().map(|s| s.net.to_string());
    (e.settings, e.faults, e.repeats, e.runs) = (1, 1, 1, 1);
    match read_record::<crate::RunResults>(&rd.results()) {
        Ok(Some(r)) => {
            e.done = 1;
            e.state = EntryState::Finished;
            e.verdict = Some(r.valid);
            let j = r.judgement();
            let (u, d) = match j {
                crate::expect::Judgement::Unexpected => (1, 0),
                crate::expect::Judgement::Undecided => (0, 1),
                crate::expect::Judgement::AsExpected => (0, 0),
            };
            let (colour, words) = judged(u, d);
            e.colour = colour;
            e.judgement = Some(words);
        }
        Ok(None) => {}
        Err(err) => e.error = Some(err),
    }
    e
}

/// A comparison's directory.
fn comparison_entry(dir: &Path, name: &str) -> StoreEntry {
    let path = dir.join(crate::compare::COMPARE_JSON);
    let mut e = StoreEntry::new(
        name,
        EntryKind::Comparison,
        format!("{name}/index.html"),
        modified_ms(&path).unwrap_or(0),
    );
    e.state = EntryState::Finished;
    e.colour = "cmp".into();
    match read_record::<crate::compare::Comparison>(&path) {
        Ok(Some(c)) => {
            e.name = format!("{} vs {}", c.a.dir_name, c.b.dir_name);
            e.target = Some(if c.a.target == c.b.target {
                c.a.target.to_string()
            } else {
                format!("{} vs {}", c.a.target, c.b.target)
            });
            e.net = Some(if c.a.net == c.b.net {
                c.a.net.to_string()
            } else {
                format!("{} vs {}", c.a.net, c.b.net)
            });
            let cells = |n: usize| if n == 1 { "cell" } else { "cells" };
            e.judgement = Some(format!(
                "{} shared {}, {} only in A, {} only in B",
                c.shared.len(),
                cells(c.shared.len()),
                c.only_a.len(),
                c.only_b.len()
            ));
        }
        Ok(None) => {}
        Err(err) => e.error = Some(err),
    }
    e
}

/// Every entry of `store`, newest first. The `latest` link and anything
/// that is neither a campaign, a run nor a comparison are left out.
pub fn scan(store: &Path) -> anyhow::Result<Vec<StoreEntry>> {
    let read = std::fs::read_dir(store)
        .map_err(|e| anyhow::anyhow!("reading the store {}: {e}", store.display()))?;
    let mut out = Vec::new();
    for item in read.flatten() {
        let Ok(kind) = item.file_type() else { continue };
        // `latest` (a link to the newest campaign) would list it twice.
        if !kind.is_dir() {
            continue;
        }
        let path = item.path();
        let name = item.file_name().to_string_lossy().into_owned();
        if CampaignDir::new(&path).campaign().exists() {
            out.push(campaign_entry(&path, &name));
        } else if path.join(crate::compare::COMPARE_JSON).exists() {
            out.push(comparison_entry(&path, &name));
        } else if RunDir::new(&path).history().exists() {
            out.push(run_entry(&path, &name));
        }
    }
    out.sort_by(|a, b| {
        b.started_unix_ms
            .cmp(&a.started_unix_ms)
            .then_with(|| b.dir.cmp(&a.dir))
    });
    Ok(out)
}
