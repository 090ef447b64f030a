//! The disk layers of a run with disk faults: one FUSE mount
//! ([`faultline_disk::fs::Mounted`]) over each member's data directory for
//! the length of the run, what each disk fault did to them, and
//! `disk.json` (see `docs/run-files.md`) written when they are unmounted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use faultline_disk::fs::Mounted;
pub use faultline_rundir::records::{Damaged, DiskCounters, DiskEvent, DiskRecord};

/// Whether this machine can put the disk layer under the members (FUSE,
/// fusermount3, and permission to mount it for the members): one line
/// naming what is missing.
pub fn check_prerequisites() -> Result<(), String> {
    faultline_disk::fs::check_prerequisites()
}

/// The mounted layers.
pub struct Disks {
    mounts: BTreeMap<String, Mounted>,
    /// What the faults did so far.
    pub events: Vec<DiskEvent>,
    /// The faults not healed yet, by (fault tag, member): their event's
    /// index in `events`, and the member's injected-error count when the
    /// fault started.
    pub(crate) open: BTreeMap<(u64, String), (usize, u64)>,
    record: PathBuf,
    model: faultline_rundir::spec::DiskModel,
}

impl Disks {
    /// Check what the layer needs, then mount one over each member's data
    /// directory in `dir`, following `model` (on failure, whatever was
    /// mounted is unmounted).
    pub fn mount(
        dir: &Path,
        ids: &[String],
        model: faultline_rundir::spec::DiskModel,
    ) -> anyhow::Result<Disks> {
        faultline_disk::fs::check_prerequisites().map_err(|e| anyhow::anyhow!(e))?;
        let rd = faultline_rundir::RunDir::new(dir);
        let mut disks = Disks {
            mounts: BTreeMap::new(),
            events: Vec::new(),
            open: BTreeMap::new(),
            record: rd.disk(),
            model,
        };
        for id in ids {
            let m = Mounted::mount_with(&rd.node_data(id), &rd.node_backing(id), model)
                .with_context(|| format!("putting the disk layer under {id}"))?;
            disks.mounts.insert(id.clone(), m);
        }
        Ok(disks)
    }

    /// The layer under member `id`.
    pub fn get(&self, id: &str) -> anyhow::Result<&Mounted> {
        self.mounts
            .get(id)
            .with_context(|| format!("{id} has no disk layer"))
    }

    /// Every member's layer.
    pub fn all(&self) -> impl Iterator<Item = (&String, &Mounted)> {
        self.mounts.iter()
    }

    /// Unmount every layer (the files stay in the data directories) and
    /// write `disk.json`.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        if self.mounts.is_empty() {
            return Ok(());
        }
        let mut record = DiskRecord {
            model: self.model,
            events: self.events.clone(),
            ..DiskRecord::default()
        };
        let mut first_err = None;
        for (id, mut m) in std::mem::take(&mut self.mounts) {
            let s = m.stats();
            record.nodes.insert(
                id.clone(),
                DiskCounters {
                    bytes_written: s.counters.bytes_written,
                    fsyncs: s.counters.fsyncs,
                    injected: s.counters.injected,
                    not_durable: s.not_durable,
                    left_behind: None,
                },
            );
            if let Err(e) = m.unmount() {
                first_err.get_or_insert(e.context(format!("{id}'s disk layer")));
            }
            if let Some(left) = m.left_behind() {
                eprintln!("faultline: {id}'s disk layer: {left}");
                if let Some(c) = record.nodes.get_mut(&id) {
                    c.left_behind = Some(left.to_string());
                }
            }
        }
        let text = serde_json::to_string_pretty(&record)?;
        std::fs::write(&self.record, text + "\n")
            .with_context(|| format!("writing {}", self.record.display()))?;
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Disks {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            tracing::error!("{e:#}");
        }
    }
}
