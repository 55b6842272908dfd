//! `handoffrail ca export`: the proxy's MITM CA certificate, for agents to trust (the same PEM as
//! `GET /api/v1/ca.pem`). Reads the data directory; a directory without a CA is an error unless `--init` asks
//! for one to be created (a CA no proxy uses would only make agents trust the wrong certificate).

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
        /// Create the CA if the data directory has none yet.
        #[arg(long)]
        init: bool,
    },
}

pub fn run(command: CaCommand) -> anyhow::Result<()> {
    match command {
        CaCommand::Export {
            data_dir,
            output,
            init,
        } => {
            let key = data_dir.join(crate::intercept::ca::KEY_FILE);
            anyhow::ensure!(
                init || key.exists(),
                "no CA in {} (no {}): run this where the server keeps its data, give --data-dir, or pass \
                 --init to create a new CA there",
                data_dir.display(),
                key.display()
            );
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
