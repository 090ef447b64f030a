//! Fault windows, read back from the history's nemesis events.

use faultline_checker::History;
use faultline_rundir::records::{phase, NemesisRecord, Phase};

/// A fault window read back from the history's nemesis events.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultWindow {
    /// The fault's name.
    pub name: String,
    /// Start, ns.
    pub start: u64,
    /// End, ns (the run's end if it never healed).
    pub end: u64,
    /// The nodes it hit.
    pub nodes: Vec<String>,
}

/// Pair start and stop events (`start-X`/`stop-X`, `pause`/`resume`,
/// `kill`/`restart`, `remove-node`/`add-node`) into windows, in start order.
pub fn fault_windows(h: &History, end: u64) -> Vec<FaultWindow> {
    let mut open: Vec<FaultWindow> = Vec::new();
    let mut done = Vec::new();
    for e in &h.nemesis {
        // Another program's history may carry other values: its events are
        // named by their `f` alone.
        let record: NemesisRecord = serde_json::from_value(e.value.clone()).unwrap_or_default();
        let name = if record.fault.is_empty() {
            e.f.clone()
        } else {
            record.fault
        };
        let nodes = record.nodes;
        let p = phase(&e.f);
        if p == Some(Phase::Start) {
            open.push(FaultWindow {
                name,
                start: e.time,
                end,
                nodes,
            });
        } else if p == Some(Phase::Stop) {
            if let Some(i) = open.iter().position(|w| w.name == name) {
                let mut w = open.remove(i);
                w.end = e.time;
                done.push(w);
            }
        }
    }
    done.extend(open);
    done.sort_by_key(|w| w.start);
    done
}
