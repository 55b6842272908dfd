//! `handoffrail ca export`: the proxy's MITM CA certificate, for agents to trust (the same PEM as
//! `GET /api/v1/ca.pem`). Reads the data directory, creating the CA there if it does not exist yet.

use crate::intercept::ca::CertificateAuthority;
use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Print (or write) the CA certificate, PEM.
    Export {
        /// The server's data directory.
        #[arg(long, env = "HANDOFFRAIL_DATA_DIR", default_value = "./.handoffrail")]
        data_dir: PathBuf,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

pub fn run(command: CaCommand) -> anyhow::Result<()> {
    match command {
        CaCommand::Export { data_dir, output } => {
            let ca = CertificateAuthority::load_or_create(&data_dir)?;
            match output {
                Some(path) => std::fs::write(&path, ca.certificate_pem())
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{}", ca.certificate_pem()),
            }
            Ok(())
        }
    }
}
