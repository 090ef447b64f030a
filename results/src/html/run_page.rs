//! One run's page: the verdict (and any safety finding in the nodes' logs),
//! the settings, the plots, the statistics, each fault window, the links'
//! counters, the counterexamples and the run's files.

use faultline_rundir::spec::{NetBackend, RunSpec};
use faultline_sut::TargetKindExt;
use maud::{html, Markup, PreEscaped};

use super::{counterexample_svg, f1, opt_ms, page, table, verdict_banner};
use crate::analysis::RunResults;

/// The run page; `node_logs` are the file names under `nodes/`.
pub fn run_page(r: &RunResults, title: &str, node_logs: &[String]) -> String {
    let why = r
        .checker
        .failures
        .iter()
        .filter_map(|f| f.counterexample.as_ref().map(|c| c.explanation.clone()))
        .chain(
            r.txns
                .iter()
                .flat_map(|t| t.report.anomalies.first())
                .map(|a| format!("{}: {}", a.class, a.explanation)),
        )
        .next()
        .unwrap_or_else(|| {
            r.checker
                .unknown
                .first()
                .and_then(|u| u.reason.clone())
                .unwrap_or_default()
        });
    let body = html! {
        h1 { "faultline run: " (title) }
        @if let Some(cut) = &r.interrupted {
            div class="banner unk" {
                b { "INTERRUPTED: " (cut) "." }
                br;
                "Its history is checked as far as it goes (the checker's verdict on it is below), but a run cut short is not a pass: its verdict counts as unknown unless it found a violation."
            }
        }
        @if let Some(line) = r.torn_history_line {
            p class="small" { "history.jsonl ended in a torn line (line " (line) ", what a killed writer leaves); it was skipped." }
        }
        @match (&r.txns, &r.locks) {
            (Some(t), _) => (super::txn_banner(r.checker.valid, t.consistency, &why)),
            (None, Some(l)) => (super::locks::banner(r.checker.valid, l, &why)),
            (None, None) => (verdict_banner(r.checker.valid, &why)),
        }
        @let judged = r.judgement();
        p class=(match judged { crate::expect::Judgement::Unexpected => "poor", _ => "" }) {
            b { "Expected: " } (r.expect().words()) " — "
            (match judged {
                crate::expect::Judgement::AsExpected => "as expected",
                crate::expect::Judgement::Unexpected => r.expect().miss(),
                crate::expect::Judgement::Undecided => "undecided (the verdict is unknown)",
            })
        }
        @if !r.findings.is_empty() {
            div class="banner bad" {
                b { "UNSAFE: the nodes' own logs show " (r.findings.len()) " safety violation(s)." }
                ul {
                    @for f in &r.findings {
                        li {
                            (f.kind)
                            @if let Some(s) = f.at_s { (format!(" at {s:.1} s")) }
                            ": " (f.message)
                        }
                    }
                }
            }
        }
        p { b { "System under test: " } (system_words(r.spec.as_ref())) }
        p { b { "Network: " } (network_words(r.spec.as_ref())) }
        @if let Some(d) = &r.disk {
            (disk_section(d))
            @for f in &r.disk_noted {
                p class="note" { "After its files were damaged: " (f.message) " — its own check noticed, and it does not vote until it holds them again (not a violation)." }
            }
        }
        @if let Some(h) = &r.hosts {
            p id="hosts" { b { "Hosts: " } "each member on a host of " code { (h.inventory) } " over ssh (run " code { (h.run) } ", set up in " (format!("{:.1}", h.setup_s)) " s" @if let Some(t) = h.teardown_s { ", ended in " (format!("{t:.1}")) " s" } ")." }
            table {
                tr { th { "member" } th { "host" } th { "ssh" } th { "address" } th { "clock offset" } th { "setup" } th { "teardown" } }
                @for e in &h.hosts {
                    tr {
                        td { (e.node) } td { (e.host) } td { (e.ssh) } td { (e.address) }
                        td { (match (e.clock_offset_ms, e.clock_uncertainty_ms) {
                            (Some(o), Some(u)) => format!("{o:+.1} ms (± {u:.1})"),
                            _ => "not measured".into(),
                        }) }
                        td { (format!("{:.1} s", e.setup_s)) }
                        td { (e.teardown_s.map_or("–".into(), |t| format!("{t:.1} s"))) }
                    }
                }
            }
            p class="small" { "The history is timed on this control node's clock. Elections and the leader timeline come from the members' logs, stamped by each host's clock and moved onto this one's by the offset above: they are as exact as that offset (± its uncertainty)." }
        }
        @if let Some(p) = &r.placement {
            p id="placement" { b { "Ran on: " } (placement_words(p)) }
            @for a in &p.attempts {
                p class="small" { "An earlier attempt on " (a.on) " failed: " (a.error) }
            }
        }
        h2 { "Settings" }
        (table(&["setting", "value"], &settings_rows(r.spec.as_ref())))
        p class="small" { "Replay: the run's seed and settings above reproduce its fault schedule." }
        h2 { "Plots" }
        @for (file, alt) in [
            ("latency.svg", "latency"),
            ("throughput.svg", "throughput"),
            ("quantiles.svg", "latency quantiles"),
            ("leaders.svg", "leader timeline"),
        ] {
            img src=(file) alt=(alt);
        }
        h2 { "Statistics" }
        (statistics(r))
        h2 { "Faults" }
        (faults(r))
        @if !r.links.is_empty() {
            @let links = &r.links;
            h2 { "Links" }
            (links_table(links))
        }
        @if !r.snapshots.is_empty() {
            h2 { "Snapshots" }
            p class="small" { "Counted from the nodes' logs over every life of each node: snapshots it took of its own state machine (compacting its log), and snapshots it installed from a leader because it needed entries the leader had compacted away." }
            (table(&["node", "taken", "installed from a leader", "highest index covered"], &r.snapshots.iter().map(|(id, s)| vec![id.clone(), s.taken.to_string(), s.installed.to_string(), s.last_index.to_string()]).collect::<Vec<_>>()))
        }
        @for f in &r.checker.failures {
            @if let Some(c) = &f.counterexample {
                h2 { "Counterexample on key " (f.key) ": " (c.kind.words()) }
                p { (c.explanation) }
                @if c.kind == faultline_checker::witness::WitnessKind::LostWrite {
                    p { (lost_in(c, &r.faults)) }
                }
                @if c.kind == faultline_checker::witness::WitnessKind::TwoHolders {
                    p { (super::locks::faults_between(c, &r.faults)) }
                }
                p class="small" {
                    "Heavy red: the witness, " (c.witness.len()) " operations that cannot all be explained together"
                    @if !c.minimal { " (a reduced set, not a minimal one)" }
                    ". Faded, beside them: grey, the end of the longest linearizable prefix the search found; red, what could not be linearized after it; blue, concurrent. Dashed: never completed (info)."
                }
                div class="scroll" { (PreEscaped(counterexample_svg(c))) }
            }
        }
        @if let Some(t) = &r.txns {
            (super::anomalies::anomalies(t))
        }
        @if let Some(l) = &r.locks {
            (super::locks::locks(l, &r.faults))
        }
        @for u in &r.checker.unknown {
            p { "Key " (u.key) ": unknown: " (u.reason.as_deref().unwrap_or("")) }
        }
        h2 { "Files" }
        ul {
            @for f in faultline_rundir::RUN_FILES {
                li { a href=(f) { (f) } }
            }
            @for l in node_logs {
                li { a href={ (faultline_rundir::NODES) "/" (l) } { (faultline_rundir::NODES) "/" (l) } }
            }
        }
    };
    page(&format!("faultline run {title}"), body, false)
}

/// Where a campaign ran the run, in words.
fn placement_words(p: &faultline_rundir::placement::RunPlacement) -> String {
    let mut s = match &p.host {
        Some(host) => format!("worker {} ({host})", p.ran_on),
        None => "this machine, in a process of its own".to_string(),
    };
    if let Some(cpus) = &p.cpus {
        let list: Vec<String> = cpus.iter().map(usize::to_string).collect();
        s.push_str(&format!(", pinned to CPUs {}", list.join(",")));
    }
    if p.shared_cores {
        s.push_str(", sharing cores with other runs of the campaign (its timing figures may have moved; its verdict does not)");
    }
    s
}

/// Which system the run tested, its version and, for etcd, what was passed.
fn system_words(spec: Option<&RunSpec>) -> String {
    let Some(v) = spec else {
        return "unknown (the run directory has no spec.json)".into();
    };
    let mut out = format!(
        "{} {}",
        v.target.words(),
        v.target_version.as_deref().unwrap_or("")
    );
    if let Some(p) = v.effective.as_ref().and_then(|e| e.passed.as_ref()) {
        out.push_str(&format!(" — {p}"));
    }
    if v.allow_amnesia {
        out.push_str(" — crashes allowed on a node that keeps its state in memory: after a restart it has forgotten everything, so a lost write is expected of it, not a finding");
    }
    if let Some(w) = v.read_mode.words() {
        out.push_str(&format!(" — {w}"));
    }
    out
}

/// Which network backend the run used, in words.
fn network_words(spec: Option<&RunSpec>) -> &'static str {
    match spec.map(|s| s.net).unwrap_or_default() {
        NetBackend::Kernel => "kernel — each node in a network namespace of its own on a bridge; faults are nftables rules acting on IP packets",
        NetBackend::Hosts => "hosts — each node on a host of the inventory, reached over ssh; faults are nftables rules of the run's own table on each host, acting on member-to-member packets (the control node's ssh and clients are never cut)",
        NetBackend::Proxy => "proxy — faultline's proxy on every directed link (loopback); faults act on whole messages",
    }
}

fn settings_rows(spec: Option<&RunSpec>) -> Vec<Vec<String>> {
    spec.map(|s| {
        s.rows()
            .into_iter()
            .map(|(k, v)| vec![k.to_string(), v])
            .collect()
    })
    .unwrap_or_default()
}

fn statistics(r: &RunResults) -> Markup {
    let counts: Vec<Vec<String>> = r
        .counts
        .iter()
        .map(|(f, c)| {
            vec![
                f.clone(),
                c.ok.to_string(),
                c.fail.to_string(),
                c.info.to_string(),
            ]
        })
        .collect();
    let latency: Vec<Vec<String>> = r
        .latency
        .iter()
        .map(|(f, p)| {
            vec![
                f.clone(),
                p.count.to_string(),
                f1(p.p50),
                f1(p.p90),
                f1(p.p99),
                f1(p.p999),
                f1(p.max),
            ]
        })
        .collect();
    let availability = [
        vec![
            "ok throughput, mean over the run (ops/s)".into(),
            f1(r.throughput),
        ],
        vec![
            "availability: the run's 100 ms buckets with an ok op".into(),
            format!("{:.1} %", r.availability.share * 100.0),
        ],
        vec![
            "longest stretch without an ok op".into(),
            format!(
                "{:.0} ms from {:.1} s",
                r.availability.longest_gap_ms, r.availability.longest_gap_start_s
            ),
        ],
        vec!["time without a working leader".into(), r.leaderless_words()],
        vec![
            "leader changes".into(),
            r.elections.leader_changes.to_string(),
        ],
        vec!["highest term".into(), r.elections.max_term.to_string()],
    ];
    html! {
        (table(&["operation", "ok", "fail", "info"], &counts))
        (table(&["latency of ok ops (ms)", "count", "p50", "p90", "p99", "p99.9", "max"], &latency))
        (table(&["availability", "value"], &availability))
    }
}

fn faults(r: &RunResults) -> Markup {
    let rows: Vec<Vec<String>> = r
        .faults
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                format!("{:.1}–{:.1}", f.start_s, f.end_s),
                f.nodes.join(", "),
                opt_ms(f.down_ms),
                opt_ms(f.recovery_ms),
                format!("{:.0}", f.leaderless_ms),
            ]
        })
        .collect();
    table(
        &[
            "fault",
            "window (s)",
            "nodes",
            "start → first ok (ms)",
            "heal → first ok (ms)",
            "without a working leader in the window (ms)",
        ],
        &rows,
    )
}

fn links_table(links: &[faultline_rundir::records::LinkStats]) -> Markup {
    use faultline_rundir::records::Counted;
    let packets = links.first().map(|l| l.counted) == Some(Counted::Packets);
    if packets {
        let rows: Vec<Vec<String>> = links
            .iter()
            .map(|l| {
                vec![
                    format!("{} → {}", l.from, l.to),
                    l.passed.to_string(),
                    l.bytes.to_string(),
                    l.dropped.to_string(),
                    l.dropped_bytes.to_string(),
                ]
            })
            .collect();
        return html! {
            p class="small" { "Counted by nftables in the receiver's namespace, in IP packets: what came in from the sender, and what a fault's rules dropped." }
            (table(&["link", "packets in", "bytes in", "packets dropped", "bytes dropped"], &rows))
        };
    }
    let rows: Vec<Vec<String>> = links
        .iter()
        .map(|l| {
            vec![
                format!("{} → {}", l.from, l.to),
                l.passed.to_string(),
                l.dropped.to_string(),
                l.duplicated.to_string(),
                l.delayed.to_string(),
                l.bytes.to_string(),
            ]
        })
        .collect();
    html! {
        p class="small" { "Counted by the link proxies, in messages of the node's protocol." }
        (table(
            &["link", "passed", "dropped", "duplicated", "delayed", "bytes"],
            &rows,
        ))
    }
}

/// The disk layer's table: per member, what it wrote and fsynced and the
/// errors injected; then what every disk fault did (bytes a power loss
/// dropped, a torn file, a damaged file and offset, a member that did not
/// come back and why).
fn disk_section(d: &faultline_rundir::records::DiskRecord) -> Markup {
    html! {
        h2 id="disk" { "Disk" }
        p { "Every member's data directory was behind faultline's disk layer (FUSE), under the disk model " b { (d.model.name()) } ": " (disk_model_words(d.model)) " (docs/faults.md)." }
        table {
            tr { th { "member" } th { "bytes written" } th { "fsyncs" } th { "errors injected" } th { "not durable at the end" } }
            @for (node, c) in &d.nodes {
                tr {
                    td { (node) } td { (c.bytes_written) } td { (c.fsyncs) }
                    td { (c.injected) } td { (c.not_durable) " bytes" }
                }
            }
        }
        @for (node, c) in &d.nodes {
            @if let Some(left) = &c.left_behind {
                p { b { (node) ": not every file was left in place: " } code { (left) } }
            }
        }
        @if !d.events.is_empty() {
            table {
                tr { th { "fault" } th { "member" } th { "what it did" } th { "afterwards" } }
                @for e in &d.events {
                    tr {
                        td { code { (e.fault) } } td { (e.node) }
                        td {
                            (disk_event_words(e))
                            @if !e.why.is_empty() {
                                ul class="small" {
                                    @for w in &e.why { li { (w) } }
                                }
                            }
                        }
                        td { @match &e.stopped {
                            Some(why) => { b { "did not come back: " } code { (why) } }
                            None => "back",
                        } }
                    }
                }
            }
        }
    }
}

/// What a disk model takes to be durable, in words.
fn disk_model_words(m: faultline_rundir::spec::DiskModel) -> &'static str {
    use faultline_rundir::spec::DiskModel;
    match m {
        DiskModel::Posix => "a write is durable once its file is fsynced, a new, renamed or removed name once its directory is (the strict reading of POSIX)",
        DiskModel::Journaled => "a write is durable once its file is fsynced; any successful fsync also makes every earlier name change durable, as ext4 (data=ordered) and XFS commit them in their journal",
        DiskModel::NamesDurable => "names are durable at once (creates, renames, removals), only file data waits for its fsync, as LazyFS models a disk",
    }
}

fn disk_event_words(e: &faultline_rundir::records::DiskEvent) -> String {
    let mut parts = Vec::new();
    if let Some(b) = e.dropped_bytes {
        parts.push(format!("power loss: {b} bytes of writes dropped"));
    }
    if !e.names_undone.is_empty() {
        parts.push(format!("names undone: {}", e.names_undone.join(", ")));
    }
    if let Some((file, kept)) = &e.torn {
        parts.push(format!(
            "torn write of {file}: {kept} of its pending bytes kept"
        ));
    }
    if let Some(c) = &e.corrupted {
        parts.push(match c.how.as_str() {
            "truncate" => format!("{} cut from {} to {} bytes", c.file, c.len, c.offset),
            _ => format!(
                "one bit flipped in {} at byte {} (of {})",
                c.file, c.offset, c.len
            ),
        });
    }
    if let Some(n) = e.injected.filter(|n| *n > 0) {
        parts.push(format!("{n} errors returned (ENOSPC/EIO)"));
    }
    if parts.is_empty() {
        "nothing to drop".into()
    } else {
        parts.join("; ")
    }
}

/// For a lost write: the fault windows between the write's
/// acknowledgement and the last read that missed it (what lost it).
fn lost_in(
    c: &faultline_checker::Counterexample,
    faults: &[crate::analysis::FaultStats],
) -> String {
    use faultline_checker::history::{OpKind, Outcome};
    let acked = c
        .witness
        .iter()
        .filter(|o| o.kind != OpKind::Read && o.outcome == Outcome::Ok)
        .filter_map(|o| o.complete_ns)
        .min();
    let missed = c
        .witness
        .iter()
        .filter(|o| o.kind == OpKind::Read)
        .map(|o| o.invoke_ns)
        .max();
    let (Some(from), Some(to)) = (acked, missed) else {
        return String::new();
    };
    let (from_s, to_s) = (from as f64 / 1e9, to as f64 / 1e9);
    let hit = super::faults_within(faults, from_s, to_s);
    if hit.is_empty() {
        format!("No fault window falls between the write's acknowledgement ({from_s:.3} s) and the read that missed it ({to_s:.3} s).")
    } else {
        format!(
            "Lost between its acknowledgement ({from_s:.3} s) and the read that missed it ({to_s:.3} s), during: {}.",
            hit.join("; ")
        )
    }
}
