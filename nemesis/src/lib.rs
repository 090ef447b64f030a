//! Cluster control for faultline: the node processes, the proxy on every
//! link, the faults, and the schedules that inject them.
//!
//! - [`process`]: one `faultline-node` OS process in its own process group.
//! - [`cluster`]: N of them on free loopback ports, waiting until each
//!   answers its status request, torn down on drop.
//! - [`net`]: the network backends, behind one interface: [`net::proxy`]
//!   (one proxy per directed link, acting on whole frames: pass, drop,
//!   delay, duplicate, reorder, block; per-link seeded RNG and counters),
//!   [`net::network`] (all links of a cluster, and partitions built from
//!   them) and [`net::kernel`] (a namespace per node on a bridge, faults
//!   as nftables rules and netem).
//! - [`hosts`]: a run's members on the hosts of an inventory (`--hosts`),
//!   over one OpenSSH connection per host.
//! - [`fault`]: the fault kinds, their names and validation.
//! - [`testbed`]: cluster + network, applying and healing faults.
//! - [`schedule`]: the seeded schedule of fault and quiet periods.
//! - [`bench`](mod@bench): the benchmarks that need a real cluster (`faultline bench
//!   node`, `proxy`; [`bench::net`], [`bench::soak`]).
#![deny(missing_docs)]

pub mod addrs;
pub mod bench;
pub mod cgroup;
pub mod cluster;
pub mod disk;
pub mod fault;
pub mod hosts;
pub mod net;
pub mod process;
pub mod schedule;
pub mod testbed;
