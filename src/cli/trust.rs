//! `handoffrail trust add|list|remove`: a thin client of the trusted-endpoints API.

use super::{ClientArgs, Format};
use clap::Subcommand;
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Trust an endpoint template, e.g. https://api.example.com/v1/orders/{id}.
    Add {
        url: String,
        /// Restrict to these methods (repeatable); any method when omitted.
        #[arg(long = "method")]
        methods: Vec<String>,
    },
    /// List the tenant's trusted endpoints.
    List,
    /// Remove a trusted endpoint by id.
    Remove { id: String },
}

pub async fn trust(command: TrustCommand, args: &ClientArgs) -> anyhow::Result<()> {
    let client = args.client()?;
    match command {
        TrustCommand::Add { url, methods } => {
            let added = client.add_trusted_endpoint(&url, &methods).await?;
            match args.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&added)?),
                Format::Table | Format::Junit => println!(
                    "Trusted {} ({})",
                    added["url"].as_str().unwrap_or_default(),
                    added["id"].as_str().unwrap_or_default()
                ),
            }
        }
        TrustCommand::List => {
            let endpoints = client.trusted_endpoints().await?;
            match args.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&endpoints)?),
                Format::Table | Format::Junit => {
                    println!("{:<36}  {:<12}  URL", "ID", "METHODS");
                    for endpoint in &endpoints {
                        let methods: Vec<&str> = endpoint["methods"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .collect();
                        let methods = if methods.is_empty() {
                            "any".to_string()
                        } else {
                            methods.join(",")
                        };
                        println!(
                            "{:<36}  {:<12}  {}",
                            endpoint["id"].as_str().unwrap_or_default(),
                            methods,
                            endpoint["url"].as_str().unwrap_or_default()
                        );
                    }
                }
            }
        }
        TrustCommand::Remove { id } => {
            client.remove_trusted_endpoint(&id).await?;
            println!("Removed {id}");
        }
    }
    Ok(())
}
