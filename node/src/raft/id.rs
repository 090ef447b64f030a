//! The name of a server. It has a module of its own because every other
//! module of the core names servers, and none of them should have to import
//! another's data types to do so.

/// A server's name, as given by `--id` (for example `n1`).
pub type NodeId = String;
