//! Results for faultline: latency and throughput plots, HTML reports for a
//! run and a campaign, and the comparison of timeout settings under each
//! fault.
//!
//! Empty for now: this crate is filled by the report issue.
