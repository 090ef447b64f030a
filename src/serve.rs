//! `faultline serve`: its flags; the server is the `serve` crate's.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// `faultline serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The store to serve.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// The port (0: any free port, printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The address to bind: loopback only (127.0.0.0/8 or ::1).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
}

/// Run `faultline serve`.
pub async fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    faultline_serve::run(&a.store, a.bind, a.port).await?;
    Ok(ExitCode::SUCCESS)
}
