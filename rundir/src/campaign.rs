//! A campaign directory's index, `campaign.json`: its settings, faults and
//! runs, written by the runner before any run starts and read by every
//! report of it (the page, `report`, `serve`, `compare`, a resumption).

use serde::{Deserialize, Serialize};

use crate::spec::Expect;

/// A setting of a campaign, as stored in `campaign.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CampaignSetting {
    /// Its name.
    pub name: String,
    /// Its timeouts, in words.
    pub description: String,
    /// The UNSAFE known-bug variant its nodes run, if any (a bug hunt).
    #[serde(default)]
    pub unsafe_bug: Option<String>,
    /// Its election timeout range, ms, as written (`150..300`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub election_timeout: Option<String>,
}

fn plain_dir<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let dir = String::deserialize(d)?;
    if crate::plain_name(&dir) {
        Ok(dir)
    } else {
        Err(serde::de::Error::custom(format!(
            "run directory {} is not a plain name inside the campaign",
            crate::quote::quoted(&dir)
        )))
    }
}

/// One run of a campaign, as stored in `campaign.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CampaignRun {
    /// Its directory, relative to the campaign's: a plain name, refused
    /// otherwise when the file is read (a `dir` of `../x` or `/x` would
    /// make a report write outside the store).
    #[serde(deserialize_with = "plain_dir")]
    pub dir: String,
    /// Setting name.
    pub setting: String,
    /// Fault kind (as given).
    pub fault: String,
    /// Repeat number, from 1.
    pub repeat: usize,
    /// Its seed.
    pub seed: u64,
    /// What it is expected to show (a positive control expects to be caught).
    #[serde(default)]
    pub expect: Expect,
}

/// `campaign.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CampaignIndex {
    /// The campaign's name.
    pub name: String,
    /// Settings, in order.
    pub settings: Vec<CampaignSetting>,
    /// Fault kinds, in order.
    pub faults: Vec<String>,
    /// Runs.
    pub runs: Vec<CampaignRun>,
}

impl CampaignIndex {
    /// A campaign directory's `campaign.json` (every run directory a plain
    /// name): none when there is none, an error naming the file otherwise.
    pub fn read(dir: &crate::CampaignDir) -> Result<Option<CampaignIndex>, String> {
        crate::records::read_record(&dir.campaign())
    }
}
