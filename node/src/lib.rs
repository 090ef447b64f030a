//! The Raft key-value node that faultline tests.
//!
//! - [`raft`]: the pure Raft core (no I/O, no clock), in the shape of etcd's
//!   raft: `tick`, `step`, `propose` in, a `Ready` out.
//! - [`sim`]: a deterministic in-memory cluster that checks the Raft safety
//!   properties after every step; the tests and the core benchmark use it.
#![deny(missing_docs)]

pub mod bench;
pub mod bugs;
pub mod change;
pub mod cli;
pub mod client;
pub mod kv;
pub mod leadership;
pub mod netpolicy;
pub mod protocol;
pub mod raft;
mod server;
pub mod settings;
pub mod sim;
pub mod storage;
