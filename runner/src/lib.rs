//! Runs and campaigns: what `faultline run`, `faultline campaign` and
//! `faultline demo` do, without the command line's flags and progress bars.
//!
//! - [`spec`]: a run's settings ([`spec::RunSpec`], `spec.json`'s record,
//!   with its defaults, from `faultline_rundir::spec`) validated once into
//!   what a run consumes ([`spec::RunPlan`]).
//! - [`campaign`]: the campaign file's model and the runs it expands to.
//! - [`presets`]: the built-in campaigns (TOML files compiled in).
//! - [`run`]: [`run::run_one`], one run from start to report.
//! - [`observer`]: the status poller that records who leads when.
//! - [`execute`]: a whole campaign into the store (here, in local jobs or
//!   on worker hosts), and rebuilding reports.
//! - [`child`]: one run in a process of its own (`faultline run-spec`).
//! - [`workers`]: worker hosts over SSH.
//! - [`resume`]: finishing a campaign that was cut short.
//! - [`store`]: the store's directory names and the `latest` link.
//!
//! ```no_run
//! # async fn demo(node: faultline_nemesis::process::NodeCommand) -> anyhow::Result<()> {
//! use faultline_runner::{run::run_one, spec::{RunPlan, RunSpec}};
//! let spec = RunSpec { nemesis: "pause-leader".into(), time_limit_s: 10.0, ..RunSpec::default() };
//! let plan = RunPlan::new(&spec)?;
//! let results = run_one(&plan, std::path::Path::new("store/one"), &node, None, None).await?;
//! println!("{:?}", results.valid);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod campaign;
pub mod child;
mod dispatch;
pub mod execute;
pub mod observer;
pub mod presets;
pub mod resume;
pub mod run;
pub mod spec;
pub mod store;
mod tally;
pub mod workers;
