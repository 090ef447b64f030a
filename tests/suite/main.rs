//! The integration tests, in one binary: each module is one file of
//! black-box tests (real processes, the command line, the pages). One
//! binary links the workspace once instead of once per file, and its
//! tests share one pool of threads, so tests that mostly wait on real
//! processes overlap instead of running binary after binary.

#[path = "../common/mod.rs"]
mod common;

mod append;
mod bench_cli;
mod browser;
mod bug_hunt;
mod campaign_cli;
mod check_cli;
mod disk_faults;
mod docs;
mod etcd;
mod figure16;
mod forward_replies;
mod hostile_disk;
mod hostile_input;
mod hosts;
mod kernel_cli;
mod locks;
mod maelstrom;
mod membership_processes;
mod nats;
mod nemesis_processes;
mod node_processes;
mod node_signals;
mod snapshot_processes;
mod teardown;
mod workers;
