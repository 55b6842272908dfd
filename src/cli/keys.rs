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
        /// Create the embedded database if there is none yet (otherwise a missing one is an error, so that a
        /// key is never written into a database no server reads).
        #[arg(long)]
        init: bool,
    },
}

/// The file of a `sqlite:` database URL.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
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
        init,
    } = command;
    anyhow::ensure!(
        !system || role == Role::Admin,
        "--system needs --role admin: a system administrator is an admin of every tenant"
    );
    let url = database_url.unwrap_or_else(|| default_database_url(&data_dir));
    if let Some(file) = sqlite_file(&url).filter(|file| !init && !file.exists()) {
        anyhow::bail!(
            "no database at {} (from {}): run this where the server keeps its data, give --data-dir or \
             --database-url, or pass --init to create a new database there",
            file.display(),
            if url == default_database_url(&data_dir) { "--data-dir" } else { "--database-url" }
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite:///srv/hr/handoffrail.db?mode=rwc"),
            Some(PathBuf::from("/srv/hr/handoffrail.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:data.db"),
            Some(PathBuf::from("data.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://localhost/hr"), None);
    }
}
