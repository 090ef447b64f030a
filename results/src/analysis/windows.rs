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

/// For every crash of the leader, the time until another node became
/// leader (`election_ms`), from the nodes' own "became leader" lines —
/// (ns since the start, node, term), in time order — up to the next fault.
/// A crash of a node that was no longer the leader (the highest term whose
/// leader had said so before the crash was another node's: the nemesis's
/// answer to "who leads" was out of date) is marked `not_leader` instead:
/// the new leader it would be timed to had nothing to do with the crash.
/// When no node had said it leads, the crash counts as the leader's.
pub fn election_trials(
    windows: &[FaultWindow],
    leader_starts: &[(u64, String, u64)],
    faults: &mut [super::FaultStats],
) {
    for (i, (w, f)) in windows.iter().zip(faults.iter_mut()).enumerate() {
        if !w.name.starts_with("crash-leader") {
            continue;
        }
        let leading = leader_starts
            .iter()
            .filter(|(t, _, _)| *t < w.start)
            .max_by_key(|(_, _, term)| *term)
            .map(|(_, id, _)| id);
        if leading.is_some_and(|id| !w.nodes.contains(id)) {
            f.not_leader = true;
            continue;
        }
        let next = windows.get(i + 1).map_or(u64::MAX, |n| n.start);
        f.election_ms = leader_starts
            .iter()
            .find(|(t, id, _)| *t >= w.start && *t < next && !w.nodes.contains(id))
            .map(|(t, _, _)| super::ms(t - w.start));
    }
}
