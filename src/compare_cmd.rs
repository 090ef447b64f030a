//! `faultline compare A B`: two campaigns side by side; `faultline compare
//! A` alone: one campaign's runs under one disk model beside the same runs
//! under another.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use faultline_results::compare::{default_out, parse_pair, Call};
use faultline_results::compare_report::write_comparison;

/// `faultline compare` flags.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Campaign A's directory (store/<campaign>).
    a: PathBuf,
    /// Campaign B's directory [default: A itself, its settings that differ
    /// only by disk model paired: NAME@posix with NAME@journaled, …].
    b: Option<PathBuf>,
    /// Pair setting A_SETTING of A with B_SETTING of B (repeatable);
    /// default: settings with the same name, else settings that differ only
    /// by disk model, else the only setting of each.
    #[arg(long = "pair", value_name = "A_SETTING=B_SETTING", value_parser = parse_pair)]
    pairs: Vec<(String, String)>,
    /// Where to write the comparison [default: beside A, compare-<A>-vs-<B>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print compare.json's summary as JSON on standard output.
    #[arg(long)]
    json: bool,
}

/// Compare two campaigns; print where the page is.
pub fn run(a: CompareArgs) -> anyhow::Result<ExitCode> {
    if a.b.is_none() && a.pairs.is_empty() {
        anyhow::ensure!(
            !faultline_results::by_model::own_model_pairs(&a.a)?.is_empty(),
            "{}: none of its settings differ only by disk model (a setting that lists several, disk_model = [\"posix\", \"journaled\"], runs as NAME@posix and NAME@journaled); name a second campaign to compare it with",
            a.a.display()
        );
    }
    let b = a.b.clone().unwrap_or_else(|| a.a.clone());
    let out = a.out.clone().unwrap_or_else(|| default_out(&a.a, &b));
    let c = write_comparison(&a.a, &b, &a.pairs, &out)?;
    let clear = c
        .shared
        .iter()
        .flat_map(|s| s.figures.iter())
        .filter(|f| matches!(f.call, Call::ABetter | Call::BBetter))
        .count();
    if a.json {
        let line = faultline_rundir::summary::CompareLine {
            report: out.join("index.html"),
            shared: c.shared.len(),
            clear_differences: clear,
            only_a: c.only_a.len(),
            only_b: c.only_b.len(),
            pairs: c.pairs.clone(),
        };
        println!("{}", serde_json::to_string(&line)?);
    } else {
        eprintln!(
            "faultline: {} cells both ran ({clear} figures clearly different), {} only in A, {} only in B",
            c.shared.len(),
            c.only_a.len(),
            c.only_b.len()
        );
        println!(
            "report: {}",
            faultline_rundir::quote::escaped_path(&out.join("index.html"))
        );
    }
    Ok(ExitCode::SUCCESS)
}
