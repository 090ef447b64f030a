//! Disk faults, through each target member's disk layer
//! ([`crate::disk::Disks`]): a power loss (whole, or torn in one file) or
//! damage to one file while the member is killed, restarted at heal; and
//! for a window, ENOSPC on writes, EIO on fsync, or slower fsyncs. A member
//! that does not come back (its data fails its checks, or it stopped on an
//! error of its disk and refuses to start) is recorded, not an error.

use std::time::{Duration, Instant};

use anyhow::Context;
use faultline_disk::{Damage, Switches, Tear};
use rand::Rng;
use serde_json::{json, Value};

use super::{Applied, Testbed};
use crate::disk::{Damaged, DiskEvent};
use crate::fault::{DiskOp, Target};
use crate::process::ProcState;

impl Testbed {
    /// Start a disk fault; returns the nodes it hit and what the history
    /// records.
    pub(super) async fn disk_fault(
        &mut self,
        op: DiskOp,
        target: &Target,
        name: &str,
    ) -> anyhow::Result<(Vec<String>, Value)> {
        anyhow::ensure!(
            self.disks.is_some(),
            "{name} needs the disk layer under every member, and this testbed has none"
        );
        let nodes = self.resolve(target).await;
        for id in &nodes {
            let mut event = DiskEvent {
                fault: name.to_string(),
                node: id.clone(),
                ..DiskEvent::default()
            };
            let seed: u64 = self.rng.gen();
            if matches!(
                op,
                DiskOp::LoseUnsynced | DiskOp::Torn | DiskOp::Corrupt { .. }
            ) {
                if let Some(p) = self.cluster.node_mut(id) {
                    p.kill();
                }
            }
            let disk = self.disks.as_ref().expect("checked").get(id)?;
            match op {
                DiskOp::LoseUnsynced | DiskOp::Torn => {
                    let loss = if op == DiskOp::Torn {
                        let tear = if seed.is_multiple_of(2) {
                            Tear::PrefixOfLast
                        } else {
                            Tear::PageSubset
                        };
                        disk.torn(seed / 2, tear)
                    } else {
                        disk.power_loss()
                    };
                    event.dropped_bytes = Some(loss.bytes);
                    event.names_undone = loss.names;
                    event.torn = loss.torn;
                    event.why = loss.why;
                }
                DiskOp::Corrupt { truncate } => {
                    let how = if truncate {
                        Damage::Truncate
                    } else {
                        Damage::BitFlip
                    };
                    event.corrupted = disk.corrupt(seed, how).map(|c| Damaged {
                        file: c.file,
                        offset: c.offset,
                        len: c.len,
                        how: if truncate { "truncate" } else { "bitflip" }.into(),
                    });
                }
                DiskOp::Full => disk.set_switches(Switches {
                    disk_full: true,
                    fsync_error: false,
                }),
                DiskOp::FsyncError => disk.set_switches(Switches {
                    disk_full: false,
                    fsync_error: true,
                }),
                DiskOp::Slow(ms) => disk.set_slow(Duration::from_millis(ms)),
            }
            let baseline = disk.stats().counters.injected;
            let tag = self.tag;
            let disks = self.disks.as_mut().expect("checked");
            disks
                .open
                .insert((tag, id.clone()), (disks.events.len(), baseline));
            disks.events.push(event);
        }
        Ok((nodes.clone(), json!(nodes)))
    }

    /// End a disk fault: switches off, and every member it hit that is
    /// down started again (recorded when it does not come back).
    pub(super) async fn heal_disk(&mut self, applied: &Applied) -> anyhow::Result<Value> {
        let mut stopped = Vec::new();
        for id in &applied.nodes {
            let Some(disks) = self.disks.as_mut() else {
                return Ok(Value::Null);
            };
            let disk = disks.get(id)?;
            let injected = disk.stats().counters.injected;
            disk.set_switches(Switches::default());
            disk.set_slow(Duration::ZERO);
            let event = disks.open.remove(&(applied.tag, id.clone()));
            if let Some((i, baseline)) = event {
                disks.events[i].injected = Some(injected.saturating_sub(baseline));
            }
            if let Some(why) = self.start_if_down(id).await? {
                if let (Some((i, _)), Some(d)) = (event, self.disks.as_mut()) {
                    d.events[i].stopped = Some(why.clone());
                }
                stopped.push(json!({"node": id, "stopped": why}));
            }
        }
        Ok(if stopped.is_empty() {
            Value::Null
        } else {
            Value::Array(stopped)
        })
    }

    /// Start `id` again if it is down; `Some(why)` if it exits instead of
    /// answering (its log's last lines), within 15 s.
    pub(super) async fn start_if_down(&mut self, id: &str) -> anyhow::Result<Option<String>> {
        let Some(p) = self.cluster.node_mut(id) else {
            return Ok(None);
        };
        if p.state() != ProcState::Down {
            return Ok(None);
        }
        p.restart().with_context(|| format!("restarting {id}"))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let down = self
                .cluster
                .node_mut(id)
                .is_none_or(|p| p.state() == ProcState::Down);
            if down {
                let log = faultline_rundir::RunDir::new(self.cluster.dir()).node_log(id);
                let text = std::fs::read_to_string(log).unwrap_or_default();
                return Ok(Some(last_words(&text)));
            }
            if let Ok(s) = self.cluster.status(id, Duration::from_millis(300)).await {
                if s.id == id {
                    return Ok(None);
                }
            }
            if Instant::now() > deadline {
                anyhow::bail!("{id} did not answer within 15 s of its restart");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The line of a member's log that says why it stopped (the last line
/// with an error, else the last line), at most 600 characters.
fn last_words(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .rev()
        .take(20)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let line = lines
        .iter()
        .find(|l| l.contains("error") || l.contains("ERROR"))
        .or(lines.first())
        .copied()
        .unwrap_or("it exited without a word");
    line.chars().take(600).collect()
}
