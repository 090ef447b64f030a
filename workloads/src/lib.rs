//! Workloads for faultline: concurrent clients that drive a cluster and
//! record every invocation and completion, in the format of docs/history-format.md.
//!
//! - [`recorder`]: one time-ordered stream of events to `history.jsonl`,
//!   shared by the workload and the nemesis.
//! - [`answer`]: how a client's answer maps to `ok`, `fail` or `info`
//!   (from the system-under-test crate, where each target's client lives).
//! - [`register`]: the read/write/cas register workload and its final reads.
//! - [`append`]: the list-append transactions the same processes run
//!   with `--workload append`.
//! - [`lock`]: locks with leases, plain or fenced, run by the same
//!   processes with `--workload lock`.
//! - [`fake`]: an in-process stand-in node, healthy or broken, for tests and benchmarks.
#![deny(missing_docs)]

pub mod append;
pub mod bench;
pub mod fake;
pub mod lock;
pub use faultline_sut::answer;
pub mod recorder;
pub mod register;
