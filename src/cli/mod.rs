//! The `handoffrail` command line: `serve`, `keys create`, and the packet client commands.

mod ca;
mod evaluate;
mod keys;
mod output;
mod packets;
mod records;
mod serve;
mod trust;

use crate::server::Listeners;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "handoffrail",
    version,
    about = "Handoff packets, intercepted evidence and claim verification for AI agents"
)]
pub struct Cli {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of the client commands; they may be given before or after the subcommand.
#[derive(Clone, Debug, clap::Args)]
pub struct ClientArgs {
    /// API root of the server.
    #[arg(
        long,
        env = "HANDOFFRAIL_URL",
        default_value = "http://localhost:8080/api/v1",
        global = true
    )]
    pub server_url: String,
    /// API key sent as X-API-Key.
    #[arg(
        long,
        env = "HANDOFFRAIL_API_KEY",
        hide_env_values = true,
        global = true
    )]
    pub api_key: Option<String>,
    /// Output format of client commands.
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    pub format: Format,
}

impl ClientArgs {
    /// A client of the server with the API key, which these commands need.
    fn client(&self) -> anyhow::Result<crate::client::Client> {
        let Some(key) = self.api_key.as_deref().filter(|key| !key.is_empty()) else {
            anyhow::bail!("API key required. Use --api-key or set HANDOFFRAIL_API_KEY.");
        };
        Ok(crate::client::Client::new(&self.server_url, key)?)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people (`text` is the same).
    #[value(alias = "text")]
    Table,
    Json,
    /// JUnit XML, for `evaluate` in CI.
    Junit,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and the interceptor proxy (SQLite in ./.handoffrail by default).
    Serve(crate::config::ServeConfig),
    /// Run the interceptor proxy alone (same flags as serve; no API port is opened).
    Proxy(crate::config::ServeConfig),
    /// The proxy's MITM certificate authority.
    #[command(subcommand)]
    Ca(ca::CaCommand),
    /// Manage API keys directly in the database.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Create a packet from a JSON file or from flags.
    Create(packets::CreateArgs),
    /// Show one packet.
    Get(packets::IdArg),
    /// List packets with filters.
    List(packets::ListArgs),
    /// Claim a packet for an agent.
    Claim(packets::ClaimArgs),
    /// Answer a packet's human checkpoint.
    Respond(packets::RespondArgs),
    /// Show a packet's history.
    History(packets::IdArg),
    /// Complete a claimed or in-progress packet.
    Complete(packets::IdArg),
    /// Import or export evidence records.
    #[command(subcommand)]
    Records(records::RecordsCommand),
    /// Manage the tenant's trusted endpoints.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Verify an agent's claims against recorded evidence; exit 0 PASS, 1 CAUGHT, 2 ERROR, 64 usage.
    Evaluate(evaluate::EvaluateArgs),
}

/// Parses the command line; `evaluate` reports usage errors with exit code 64 (sysexits EX_USAGE), as CI
/// gates distinguish them from verdicts.
pub fn parse() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let usage = !matches!(
                error.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            if usage && std::env::args().any(|arg| arg == "evaluate") {
                let _ = error.print();
                std::process::exit(i32::from(evaluate::USAGE));
            }
            error.exit()
        }
    }
}

pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("Error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Evaluate(args) = cli.command {
        return runtime.block_on(evaluate::run(args, &cli.client));
    }
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(config) => serve::run(config, Listeners::ApiAndProxy).await,
            Command::Proxy(config) => serve::run(config, Listeners::ProxyOnly).await,
            Command::Ca(command) => ca::run(command),
            Command::Keys(command) => keys::run(command, cli.client.format).await,
            Command::Records(command) => records::records(command, &cli.client).await,
            Command::Trust(command) => trust::trust(command, &cli.client).await,
            command => packets::run(command, &cli.client).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        // Clap checks names, ids and defaults of every subcommand only when asked (or at run time).
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
