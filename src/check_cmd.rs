//! `faultline check FILE`: the linearizability verdict for a history of
//! registers, or — for a history of list-append transactions (`"f":
//! "txn"`) — the verdict of the Elle-style checker against a consistency
//! model.
//!
//! Exit status (docs/history-format.md): 0 linearizable (or valid), 1 not
//! linearizable (or anomalies found), 2 bad usage or a malformed file, 3
//! unknown (the search ran out of its budget).

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use faultline_checker::{check_history, read_edn, read_jsonl, History, Options, Report, Verdict};

/// Input formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// JSON Lines as in docs/history-format.md.
    Jsonl,
    /// Jepsen/Knossos EDN.
    Edn,
}

/// `faultline check` flags.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The history file.
    file: PathBuf,
    /// Print one JSON object on standard output.
    #[arg(long)]
    json: bool,
    /// The file's format.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: Format,
    /// Time budget for the whole check, seconds; undecided keys are "unknown".
    #[arg(long, default_value_t = 60)]
    budget_secs: u64,
    /// Memory budget for the search, MiB.
    #[arg(long, default_value_t = 1024)]
    max_memory_mb: u64,
    /// Worker threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// For a history of list-append transactions: the model to judge it
    /// against, `strict-serializable`, `serializable` or
    /// `strong-session-serializable` (serializable, each process's
    /// transactions in their order) [default: strict-serializable]. A
    /// register history is judged linearizable and refuses it.
    #[arg(long)]
    consistency: Option<faultline_checker::elle::Consistency>,
}

/// The file's list-append transactions, when it holds them (its first
/// client operation is a `txn`); none for a register history.
fn transactions(
    path: &std::path::Path,
    format: Format,
) -> anyhow::Result<Option<faultline_checker::elle::Columns>> {
    use faultline_checker::elle::history;
    let shown = faultline_rundir::quote::quoted_os(path.as_os_str());
    let found = match format {
        Format::Jsonl => {
            let f = File::open(path).map_err(|e| anyhow::anyhow!("cannot open {shown}: {e}"))?;
            let mut reader = BufReader::with_capacity(1 << 20, f);
            if !history::starts_with_txn(&mut reader) {
                return Ok(None);
            }
            std::io::Seek::rewind(&mut reader)
                .map_err(|e| anyhow::anyhow!("cannot read {shown}: {e}"))?;
            history::read_jsonl_columns(reader)
        }
        Format::Edn => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {shown}: {e}"))?;
            if !history::is_txn_edn(&text) {
                return Ok(None);
            }
            history::read_edn_columns(&text)
        }
    };
    found.map(Some).map_err(|e| anyhow::anyhow!("{shown}: {e}"))
}

/// Check a history of list-append transactions.
fn run_transactions(
    args: &CheckArgs,
    txns: faultline_checker::elle::Columns,
) -> anyhow::Result<ExitCode> {
    let t0 = std::time::Instant::now();
    let consistency = args.consistency.unwrap_or_default();
    let r = faultline_checker::elle::check_columns(&txns, consistency).map_err(|e| {
        let shown = faultline_rundir::quote::quoted_os(args.file.as_os_str());
        anyhow::anyhow!("{shown}: {e}")
    })?;
    if args.json {
        // The report, with the model it was judged against and each
        // anomaly's transactions as lines of the file.
        let mut v = serde_json::to_value(&r)?;
        v["consistency"] = consistency.to_string().into();
        if let Some(list) = v["anomalies"].as_array_mut() {
            for (json, a) in list.iter_mut().zip(&r.anomalies) {
                json["lines"] = a.txns.iter().map(|&t| txns.line(t)).collect();
            }
        }
        println!("{v}");
    } else {
        let model = consistency.to_string();
        let verdict = if r.valid {
            model.to_string()
        } else {
            let classes: Vec<String> = r.counts.iter().map(|(c, n)| format!("{c} ×{n}")).collect();
            format!("NOT {model}: {}", classes.join(", "))
        };
        println!(
            "{}: {} transactions: {verdict} ({:.0} ms)",
            args.file.display(),
            r.txns,
            t0.elapsed().as_secs_f64() * 1e3
        );
        for a in &r.anomalies {
            let lines: Vec<String> = a.txns.iter().map(|&t| txns.line(t).to_string()).collect();
            println!(
                "  {}: {} (lines {})",
                a.class,
                a.explanation,
                lines.join(", ")
            );
        }
    }
    Ok(ExitCode::from(if r.valid { 0 } else { 1 }))
}

/// Read a history file in the given format; errors name the file and line.
pub fn load(path: &std::path::Path, format: Format) -> anyhow::Result<History> {
    let shown = faultline_rundir::quote::quoted_os(path.as_os_str());
    let result = match format {
        Format::Jsonl => {
            let f = File::open(path).map_err(|e| anyhow::anyhow!("cannot open {shown}: {e}"))?;
            read_jsonl(BufReader::with_capacity(1 << 20, f))
        }
        Format::Edn => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {shown}: {e}"))?;
            read_edn(&text)
        }
    };
    let history = result.map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    if let Some((line, bytes)) = history.torn_last_line {
        eprintln!(
            "faultline: warning: {shown} line {line}: a torn last line ({bytes} bytes without a newline, what a killed writer leaves) was skipped"
        );
    }
    Ok(history)
}

/// Run `faultline check`.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    if let Some(txns) = transactions(&args.file, args.format)? {
        return run_transactions(&args, txns);
    }
    if let Some(c) = args.consistency {
        anyhow::bail!(
            "--consistency {c} is for list-append histories (\"f\": \"txn\"); {} holds register operations, judged for linearizability",
            faultline_rundir::quote::quoted_os(args.file.as_os_str())
        );
    }
    let history = load(&args.file, args.format)?;
    let mut opts = Options {
        budget: Duration::from_secs(args.budget_secs),
        max_memory: args.max_memory_mb.saturating_mul(1 << 20),
        ..Options::default()
    };
    if let Some(t) = args.threads {
        anyhow::ensure!(t > 0, "--threads must be at least 1");
        opts.threads = t;
    }
    let report = check_history(&history, &opts);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", render_text(&args.file.display().to_string(), &report));
    }
    Ok(ExitCode::from(report.valid.exit_code()))
}

/// The report as text.
pub fn render_text(name: &str, r: &Report) -> String {
    let mut s = String::new();
    let verdict = match r.valid {
        Verdict::Linearizable => "linearizable".to_string(),
        Verdict::NotLinearizable => format!(
            "NOT linearizable ({} of {} keys fail)",
            r.failures.len(),
            r.keys
        ),
        Verdict::Unknown => match &r.reason {
            Some(why) => format!("UNKNOWN: {why}"),
            None => format!("UNKNOWN ({} of {} keys undecided)", r.unknown.len(), r.keys),
        },
    };
    s.push_str(&format!(
        "{name}: {} operations on {} keys: {verdict} ({:.0} ms)\n",
        r.ops, r.keys, r.elapsed_ms
    ));
    for f in &r.failures {
        let Some(c) = &f.counterexample else { continue };
        s.push_str(&format!("  key {}: {}\n", f.key, c.explanation));
        s.push_str(&format!(
            "    witness ({} operations{}): lines {}\n",
            c.witness.len(),
            if c.minimal {
                ""
            } else {
                ", reduced, not minimal"
            },
            c.witness
                .iter()
                .map(|o| o.line.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for o in &c.witness {
            let end = o
                .complete_ns
                .map_or("…".to_string(), faultline_checker::witness::readable_time);
            s.push_str(&format!(
                "      line {}: process {} {} {} [{} – {end}]\n",
                o.line,
                o.process,
                o.kind.name(),
                o.value,
                faultline_checker::witness::readable_time(o.invoke_ns),
            ));
        }
        if !c.concurrent.is_empty() {
            s.push_str(&format!(
                "    {} other operations ran concurrently (--json lists them)\n",
                c.concurrent.len()
            ));
        }
    }
    for u in &r.unknown {
        s.push_str(&format!(
            "  key {}: unknown: {}\n",
            u.key,
            u.reason.as_deref().unwrap_or("")
        ));
    }
    s
}
