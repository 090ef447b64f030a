//! The Raft key-value node; all of it lives in the `faultline-node` crate.

fn main() -> std::process::ExitCode {
    faultline_node::cli::main()
}
