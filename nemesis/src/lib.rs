//! Cluster control for faultline: the node processes, the proxy on every
//! link, the faults, and the schedules that inject them.
//!
//! - [`process`]: one `faultline-node` OS process in its own process group.
//! - [`cluster`]: N of them on free loopback ports, waiting until each
//!   answers its status request, torn down on drop.
//! - [`proxy`]: one proxy per directed link, acting on whole frames: pass,
//!   drop, delay, duplicate, reorder, block; per-link seeded RNG and counters.
//! - [`network`]: all links of a cluster, and partitions built from them.
//! - [`fault`]: the fault kinds, their names and validation.
//! - [`kernel`]: the kernel network backend: a namespace per node on a
//!   bridge, faults as nftables rules and netem.
//! - [`net`]: the backend a run uses (proxies, kernel, or direct links),
//!   behind one interface.
//! - [`testbed`]: cluster + network, applying and healing faults.
//! - [`schedule`]: the seeded schedule of fault and quiet periods.
//! - [`bench`], [`netbench`], [`soak`]: the benchmarks that need a real
//!   cluster (`faultline bench node`, `proxy`, `net`, `soak`).
#![deny(missing_docs)]

pub mod bench;
pub mod cluster;
pub mod fault;
pub mod kernel;
pub mod net;
pub mod netbench;
pub mod network;
pub mod process;
pub mod proxy;
pub mod schedule;
pub mod soak;
pub mod testbed;
