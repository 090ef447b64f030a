//! How many snapshots each node took and installed over a run, counted
//! from the nodes' own log lines (`faultline::snapshot` events), so the
//! count covers every life of a node the nemesis restarted.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One node's snapshots over a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSnapshots {
    /// Snapshots it took of its own state machine.
    pub taken: u64,
    /// Snapshots it installed from a leader (InstallSnapshot).
    pub installed: u64,
    /// The highest index a snapshot of it covered.
    pub last_index: u64,
}

impl NodeSnapshots {
    /// Count one line of a node's log.
    fn count_line(&mut self, line: &str) {
        use faultline_rundir::records::{LogLine, SNAPSHOT, SNAPSHOT_INSTALLED, SNAPSHOT_TAKEN};
        let Some(l) = LogLine::parse(line).filter(|l| l.is(SNAPSHOT)) else {
            return;
        };
        match l.fields.event.as_deref() {
            Some(SNAPSHOT_TAKEN) => self.taken += 1,
            Some(SNAPSHOT_INSTALLED) => self.installed += 1,
            _ => return,
        }
        self.last_index = self.last_index.max(l.fields.index.unwrap_or(0));
    }
}

/// Count the snapshot lines in every `*.log` of `nodes_dir`, by node (the
/// file's name). Nodes that never logged one are left out; an empty map
/// means no node took or installed a snapshot (or the system under test
/// does not log them).
pub fn count(nodes_dir: &Path) -> BTreeMap<String, NodeSnapshots> {
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(nodes_dir) else {
        return out;
    };
    for p in rd.filter_map(|e| e.ok()).map(|e| e.path()) {
        if p.extension().is_none_or(|x| x != "log") {
            continue;
        }
        let Some(id) = p.file_stem() else {
            continue;
        };
        let mut c = NodeSnapshots::default();
        let _ = faultline_rundir::read::for_each_line(&p, |line| c.count_line(line));
        if c != NodeSnapshots::default() {
            out.insert(id.to_string_lossy().into_owned(), c);
        }
    }
    out
}

/// The counts of one node's log text.
pub fn count_text(text: &str) -> NodeSnapshots {
    let mut c = NodeSnapshots::default();
    for line in text.lines() {
        c.count_line(line);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_taken_and_installed_lines_and_skips_the_rest() {
        let text = [
            r#"{"target":"faultline::snapshot","fields":{"event":"taken","message":"took a snapshot","index":40}}"#,
            r#"{"target":"faultline::snapshot","fields":{"event":"installed","message":"installed a snapshot from the leader","index":120}}"#,
            r#"{"target":"faultline::snapshot","fields":{"message":"took a snapshot","index":400}}"#,
            r#"{"target":"faultline::role","fields":{"message":"role changed"}}"#,
            "not json faultline::snapshot",
            r#"{"target":"faultline::snapshot","fields":{"event":"taken","message":"took a snapshot","index":80}}"#,
        ]
        .join("\n");
        assert_eq!(
            count_text(&text),
            NodeSnapshots {
                taken: 2,
                installed: 1,
                last_index: 120
            }
        );
    }
}
