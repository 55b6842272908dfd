//! The `handoffrail` command line: `serve`, `keys create`, and the packet client commands.

mod keys;
mod output;
mod packets;
mod serve;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (SQLite in ./.handoffrail by default).
    Serve(crate::config::ServeConfig),
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
    /// Complete a claimed packet (moves it through in_progress to completed).
    Complete(packets::IdArg),
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
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(config) => serve::run(config).await,
            Command::Keys(command) => keys::run(command, cli.client.format).await,
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
