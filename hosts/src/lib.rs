//! Hosts that faultline reaches over SSH: the inventory file that lists
//! them ([`inventory`]) and one multiplexed OpenSSH connection per host
//! ([`ssh`]), and what a host offers ([`check`]). Runs on hosts
//! (`faultline run --hosts`) and campaign workers (`faultline campaign
//! --workers`) use it; only hosts of an inventory the user gave are ever
//! contacted.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! let hosts = faultline_hosts::inventory::load("workers.toml".as_ref())?;
//! let c = faultline_hosts::ssh::Connection::open(&hosts[0]).await?;
//! println!("{}", c.sh("uname", "uname -sm", Duration::from_secs(10)).await?);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod check;
pub mod inventory;
pub mod ssh;
