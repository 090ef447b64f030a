//! Cluster control for faultline: the node processes, (later) the proxy on
//! every link, and the fault schedules.
//!
//! - [`process`]: one `faultline-node` OS process in its own process group.
//! - [`cluster`]: N of them on free loopback ports, waiting until each
//!   answers its status request, torn down on drop.
#![deny(missing_docs)]

pub mod cluster;
pub mod process;
