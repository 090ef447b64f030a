//! Safety checks on the nodes' own logs, beside the history's checker.
//!
//! The history shows what clients saw; the nodes' logs (`nodes/*.log`, one
//! JSON line per event, written by `faultline-node`) show what the servers
//! did. Two things there are bugs whatever the clients saw:
//!
//! - **election safety**: two nodes that each say they became leader of the
//!   same term (Raft allows at most one leader per term);
//! - **a node that stopped on its own**: a panic, such as the node's own
//!   assertion that it was asked to overwrite a committed entry (a state
//!   machine safety violation caught in the act);
//! - **lost acknowledged entries**: a leader found a follower whose log
//!   ends below what it had acknowledged (its disk lost fsynced data, which
//!   Raft assumes cannot happen).
//!
//! A node restarted by the nemesis keeps appending to the same log file, so
//! the whole run is there. Lines that are not JSON (the runtime's own panic
//! message, say) are skipped: the node logs every panic as JSON first.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One safety violation found in the nodes' logs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// `election-safety`, `node-panic` or `lost-entries`.
    pub kind: String,
    /// The node(s) concerned.
    pub nodes: Vec<String>,
    /// Seconds into the run (absent when the run's start time is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_s: Option<f64>,
    /// What happened, in one line.
    pub message: String,
}

/// Check every `*.log` in `nodes_dir`. `start_unix_ns` is the wall-clock
/// time of the run's start (to place findings in the run); logs that cannot
/// be read are skipped (a run without logs has nothing to say here).
pub fn audit(nodes_dir: &Path, start_unix_ns: Option<u128>) -> Vec<Finding> {
    let mut files: Vec<_> = std::fs::read_dir(nodes_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut a = Auditor::new(start_unix_ns);
    for p in &files {
        let Some(id) = p.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        // One bounded line at a time: a member's log can be large.
        let _ = faultline_rundir::read::for_each_line(p, |line| a.line(&id, line));
    }
    a.finish()
}

/// A "became leader" line of a node's log, as (time, the node if the line
/// names it, term): faultline's role-change record, or etcd's raft line
/// (`"msg":"<member> became leader at term N"`, named by its log file;
/// another program's JSON).
pub fn leader_line(line: &str) -> Option<(Option<u128>, Option<String>, u64)> {
    use faultline_rundir::records::{LogLine, ROLE};
    if let Some(l) = LogLine::parse(line).filter(|l| l.is(ROLE)) {
        if l.fields.role.as_deref() != Some("Leader") {
            return None;
        }
        let ts = l.timestamp.as_deref().and_then(parse_rfc3339_ns);
        return Some((ts, l.fields.id, l.fields.term?));
    }
    #[derive(serde::Deserialize)]
    struct EtcdLine {
        msg: String,
        #[serde(default)]
        ts: Option<String>,
    }
    let e: EtcdLine = serde_json::from_str(line).ok()?;
    let (_, term) = e.msg.split_once(" became leader at term ")?;
    let ts = e.ts.as_deref().and_then(parse_rfc3339_ns);
    Some((ts, None, term.trim().parse().ok()?))
}

/// [`audit`] on the logs' texts, as `(node id, text)`.
pub fn audit_texts(logs: &[(String, String)], start_unix_ns: Option<u128>) -> Vec<Finding> {
    let mut a = Auditor::new(start_unix_ns);
    for (file_id, text) in logs {
        for line in text.lines() {
            a.line(file_id, line);
        }
    }
    a.finish()
}

/// The audit, fed one log line at a time.
struct Auditor {
    start_unix_ns: Option<u128>,
    /// term -> leaders, each with the first time it said so
    leaders: BTreeMap<u64, BTreeMap<String, Option<u128>>>,
    findings: Vec<Finding>,
}

impl Auditor {
    fn new(start_unix_ns: Option<u128>) -> Auditor {
        Auditor {
            start_unix_ns,
            leaders: BTreeMap::new(),
            findings: Vec::new(),
        }
    }

    fn at(&self, ts: Option<u128>) -> Option<f64> {
        let (t, s) = (ts?, self.start_unix_ns?);
        Some((t as f64 - s as f64) / 1e9)
    }

    fn line(&mut self, file_id: &str, line: &str) {
        if let Some((ts, id, term)) = leader_line(line) {
            let id = id.unwrap_or_else(|| file_id.to_string());
            let first = self
                .leaders
                .entry(term)
                .or_default()
                .entry(id)
                .or_insert(ts);
            if first.is_none() {
                *first = ts;
            }
            return;
        }
        let Some(l) = faultline_rundir::records::LogLine::parse(line) else {
            return;
        };
        let fields = &l.fields;
        let ts = l.timestamp.as_deref().and_then(parse_rfc3339_ns);
        match l.target.as_deref() {
            Some(faultline_rundir::records::LOST_ENTRIES) => {
                let follower = fields.follower.as_deref().unwrap_or("a follower");
                let (from, to) = (fields.from, fields.to);
                self.findings.push(Finding {
                    kind: "lost-entries".into(),
                    nodes: vec![follower.to_string()],
                    at_s: self.at(ts),
                    message: match (from, to) {
                        (Some(a), Some(b)) => {
                            format!("node {follower} lost acknowledged entries {a}–{b}")
                        }
                        _ => format!("node {follower} lost acknowledged entries"),
                    },
                });
            }
            Some(faultline_rundir::records::PANIC) => self.findings.push(Finding {
                kind: "node-panic".into(),
                nodes: vec![file_id.to_string()],
                at_s: self.at(ts),
                message: format!(
                    "{file_id} stopped on its own: {} ({})",
                    fields.message.as_deref().unwrap_or("panicked"),
                    fields.location.as_deref().unwrap_or("unknown location")
                ),
            }),
            _ => {}
        }
    }

    fn finish(mut self) -> Vec<Finding> {
        let leaders = std::mem::take(&mut self.leaders);
        for (term, ids) in leaders {
            if ids.len() < 2 {
                continue;
            }
            let mut by_time: Vec<(String, Option<u128>)> = ids.into_iter().collect();
            by_time.sort_by_key(|(id, t)| (t.unwrap_or(u128::MAX), id.clone()));
            let second = by_time[1].1;
            let who: Vec<String> = by_time
                .iter()
                .map(|(id, t)| match self.at(*t) {
                    // The first election happens while the cluster starts.
                    Some(s) if s < 0.0 => format!("{id} (before the run began)"),
                    Some(s) => format!("{id} (at {s:.1} s)"),
                    None => id.clone(),
                })
                .collect();
            let at = self.at(second);
            self.findings.push(Finding {
                kind: "election-safety".into(),
                nodes: by_time.iter().map(|(id, _)| id.clone()).collect(),
                at_s: at,
                message: format!(
                    "{} nodes became leader of term {term}: {}",
                    by_time.len(),
                    who.join(", ")
                ),
            });
        }
        let mut findings = self.findings;
        findings.sort_by(|a, b| {
            a.at_s
                .unwrap_or(f64::INFINITY)
                .total_cmp(&b.at_s.unwrap_or(f64::INFINITY))
        });
        findings
    }
}

/// An RFC 3339 time stamp (`2026-11-22T07:41:24.747481Z`, as the node
/// writes them) as nanoseconds since the Unix epoch.
pub fn parse_rfc3339_ns(s: &str) -> Option<u128> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    u128::try_from(t.timestamp_nanos_opt()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcds_leader_lines_count_for_election_safety() {
        let line = |term: u64| {
            format!(
                r#"{{"level":"info","ts":"2026-11-30T07:18:18.686Z","caller":"raft/raft.go:771","msg":"bdae9bbc11dd390d became leader at term {term}"}}"#
            )
        };
        let logs = vec![("n1".to_string(), line(2)), ("n2".to_string(), line(2))];
        let f = audit_texts(&logs, None);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, "election-safety");
        let fine = vec![("n1".to_string(), line(2)), ("n2".to_string(), line(3))];
        assert!(audit_texts(&fine, None).is_empty());
    }

    fn role(ts: &str, id: &str, role: &str, term: u64) -> String {
        format!(
            r#"{{"timestamp":"{ts}","level":"INFO","fields":{{"message":"role changed","id":"{id}","role":"{role}","term":{term},"leader":""}},"target":"faultline::role"}}"#
        )
    }

    #[test]
    fn a_follower_that_lost_acknowledged_entries_is_a_finding() {
        let line = r#"{"timestamp":"2026-11-22T08:00:03Z","level":"ERROR","fields":{"message":"node n1 lost acknowledged entries 46-48","id":"n2","follower":"n1","from":46,"to":48},"target":"faultline::lost_entries"}"#;
        let start = parse_rfc3339_ns("2026-11-22T08:00:00Z");
        let f = audit_texts(&[("n2".into(), line.into())], start);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, "lost-entries");
        assert_eq!(f[0].message, "node n1 lost acknowledged entries 46–48");
        assert_eq!(f[0].at_s, Some(3.0));
    }

    #[test]
    fn timestamps_parse_to_unix_time() {
        assert_eq!(parse_rfc3339_ns("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ns("2000-03-01T00:00:01.5Z"),
            Some(951_868_801_500_000_000)
        );
        assert_eq!(
            parse_rfc3339_ns("2026-11-22T07:41:24.747481Z"),
            Some(1_795_333_284_747_481_000)
        );
        // RFC 3339 allows a space for the T.
        assert_eq!(
            parse_rfc3339_ns("2026-11-22 07:41:24Z"),
            parse_rfc3339_ns("2026-11-22T07:41:24Z")
        );
        for bad in ["2026-13-01T00:00:00Z", "2026-11-22T07:41:24", "x"] {
            assert_eq!(parse_rfc3339_ns(bad), None, "{bad}");
        }
    }

    #[test]
    fn two_leaders_of_one_term_and_panics_are_found() {
        let start = parse_rfc3339_ns("2026-11-22T08:00:00Z");
        let n1 = [
            role("2026-11-22T08:00:01Z", "n1", "Leader", 1),
            role("2026-11-22T08:00:05Z", "n1", "Follower", 2),
            role("2026-11-22T08:00:09Z", "n1", "Leader", 3),
            "thread 'main' panicked at src/x.rs:1:1: not json".to_string(),
        ]
        .join("\n");
        let n2 = [
            role("2026-11-22T08:00:06Z", "n2", "Leader", 2),
            role("2026-11-22T08:00:08Z", "n2", "Leader", 3),
            r#"{"timestamp":"2026-11-22T08:00:10Z","level":"ERROR","fields":{"message":"panicked: n2: leader n1 asked to overwrite committed entry 7 (commit 9)","location":"node/src/raft/mod.rs:668"},"target":"faultline::panic"}"#.to_string(),
        ]
        .join("\n");
        let n3 = role("2026-11-22T08:00:02Z", "n3", "Follower", 1);
        let logs = vec![("n1".into(), n1), ("n2".into(), n2), ("n3".into(), n3)];
        let f = audit_texts(&logs, start);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].kind, "election-safety");
        assert_eq!(f[0].nodes, ["n2", "n1"]);
        assert_eq!(f[0].at_s, Some(9.0));
        assert!(f[0].message.contains("term 3"), "{}", f[0].message);
        assert_eq!(f[1].kind, "node-panic");
        assert_eq!(f[1].at_s, Some(10.0));
        assert!(f[1].message.contains("overwrite committed entry 7"));

        // A leader elected while the cluster started comes before the run.
        let early = vec![
            (
                "n1".to_string(),
                role("2026-11-22T07:59:59Z", "n1", "Leader", 1),
            ),
            (
                "n2".to_string(),
                role("2026-11-22T08:00:04Z", "n2", "Leader", 1),
            ),
        ];
        let f = audit_texts(&early, start);
        assert_eq!(f[0].at_s, Some(4.0));
        assert!(
            f[0].message
                .contains("n1 (before the run began), n2 (at 4.0 s)"),
            "{}",
            f[0].message
        );

        // One leader per term, no panic: nothing to report.
        let clean = vec![(
            "n1".to_string(),
            [
                role("2026-11-22T08:00:01Z", "n1", "Leader", 1),
                role("2026-11-22T08:00:01Z", "n1", "Leader", 1),
            ]
            .join("\n"),
        )];
        assert!(audit_texts(&clean, start).is_empty());
    }
}
