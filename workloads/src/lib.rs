//! Workloads for faultline: concurrent clients that drive a cluster and
//! record every invocation and completion in a history file (HISTORY.md).
//!
//! Empty for now: this crate is filled by the workload issue. Until then the
//! node's own client (`faultline_node::client`) is the way to talk to a node.
