//! `handoffrail keys create`: writes a key straight into the database, for operators and provisioning.

use super::Format;
use crate::auth::{NewApiKey, Role, Tier, DEFAULT_TENANT};
use crate::config::default_database_url;
use crate::store::{self, redact_url, StoreOptions};
use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (the plaintext is shown only this once).
    Create {
        /// A name that says who uses the key.
        #[arg(long)]
        name: String,
        /// admin, writer, agent or reader.
        #[arg(long, value_parser = parse_role, default_value = "admin")]
        role: Role,
        /// Tenant the key belongs to.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// free, pro or business.
        #[arg(long, value_enum, default_value_t = Tier::Business)]
        tier: Tier,
        /// A system administrator: manages tenants and the keys of every tenant (admin role only).
        #[arg(long)]
        system: bool,
        /// Database URL [default: sqlite://<data-dir>/handoffrail.db]
        #[arg(long, env = "HANDOFFRAIL_DATABASE_URL")]
        database_url: Option<String>,
        /// Data directory of the embedded database.
        #[arg(long, env = "HANDOFFRAIL_DATA_DIR", default_value = "./.handoffrail")]
        data_dir: PathBuf,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text)
        .ok_or_else(|| format!("unknown role '{text}' (expected admin, writer, agent or reader)"))
}

pub async fn run(command: KeysCommand, format: Format) -> anyhow::Result<()> {
    let KeysCommand::Create {
        name,
        role,
        tenant,
        tier,
        system,
        database_url,
        data_dir,
    } = command;
    anyhow::ensure!(
        !system || role == Role::Admin,
        "--system needs --role admin: a system administrator is an admin of every tenant"
    );
    let url = database_url.unwrap_or_else(|| default_database_url(&data_dir));
    if url.starts_with("sqlite:") {
        crate::data_dir::create_private_dir(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
    }
    let store = store::open(&url, &StoreOptions::default())
        .await
        .with_context(|| format!("opening database {}", redact_url(&url)))?;
    let mut key = NewApiKey::generate(&name, &tenant, role, tier);
    if system {
        key = key.system();
    }
    store.insert_api_key(&key).await?;
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "id": key.key.id, "name": key.key.name, "key_prefix": key.key.key_prefix,
                "tenant_id": key.key.tenant_id, "role": key.key.role, "tier": key.key.tier,
                "created_at": key.key.created_at, "system": key.key.system, "key": key.plaintext,
            }))?
        ),
        Format::Table | Format::Junit => {
            println!(
                "Created API key {} ({}, role {}{}, tenant {}, tier {})",
                key.key.id,
                key.key.name,
                role.as_str(),
                if system { ", system administrator" } else { "" },
                tenant,
                tier.as_str()
            );
            println!("{}", key.plaintext);
            eprintln!("Save this key now: it cannot be shown again.");
        }
    }
    Ok(())
}
