//! Fault windows, read back from the history's nemesis events.

use faultline_checker::History;
use serde_json::Value;

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
        let name = e
            .value
            .get("fault")
            .and_then(Value::as_str)
            .unwrap_or(&e.f)
            .to_string();
        let nodes: Vec<String> = e
            .value
            .get("nodes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let is_start =
            e.f.starts_with("start-") || matches!(e.f.as_str(), "pause" | "kill" | "remove-node");
        let is_stop =
            e.f.starts_with("stop-") || matches!(e.f.as_str(), "resume" | "restart" | "add-node");
        if is_start {
            open.push(FaultWindow {
                name,
                start: e.time,
                end,
                nodes,
            });
        } else if is_stop {
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
