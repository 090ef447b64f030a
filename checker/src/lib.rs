//! The linearizability checker: reads a history (docs/history-format.md's JSON Lines,
//! or Jepsen's EDN), splits it by key, and decides for each key whether some
//! order of the operations, consistent with real time, explains every
//! result of a register.
//!
//! It works from files only and depends on no other faultline crate, so it
//! checks histories from any system.
//!
//! ```
//! use faultline_checker::{check_history, read_jsonl, Options, Verdict};
//! let text = r#"{"time":1,"process":0,"type":"invoke","f":"write","key":"x","value":1}
//! {"time":2,"process":0,"type":"ok","f":"write","key":"x","value":1}
//! {"time":3,"process":1,"type":"invoke","f":"read","key":"x","value":null}
//! {"time":4,"process":1,"type":"ok","f":"read","key":"x","value":null}
//! "#;
//! let history = read_jsonl(text.as_bytes()).unwrap();
//! let report = check_history(&history, &Options::default());
//! assert_eq!(report.valid, Verdict::NotLinearizable); // a stale read
//! ```
//!
//! - [`history`]: parsing and validation; [`edn`]: the EDN reader.
//! - [`model`]: sequential specifications behind a trait; the [`model::Register`].
//! - [`register`]: what unique written values allow (pruning, the zone test).
//! - [`search`]: the general Wing–Gong–Lowe search with a configuration cache.
//! - [`jit`]: the register's just-in-time search when values repeat.
//! - [`check`]: per-key decomposition in parallel, budgets, counterexamples.
//! - [`gen`]: synthetic histories for tests and benchmarks.
//! - [`elle`]: list-append transactions, checked Elle's way (dependency
//!   cycles), for histories of any size.
#![deny(missing_docs)]

pub mod bench;
pub mod check;
pub mod edn;
pub mod elle;
pub mod gen;
pub mod history;
pub mod jit;
pub mod model;
pub mod mutex;
pub mod register;
pub mod search;
pub mod witness;

pub use check::{check_history, Counterexample, KeyResult, Options, Report, Verdict};
pub use edn::read_edn;
pub use history::{read_jsonl, History, HistoryError, Op};
