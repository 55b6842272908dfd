//! `handoffrail records import|export`: a thin client of the records API.

use super::{ClientArgs, Format};
use anyhow::Context;
use clap::Subcommand;
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum RecordsCommand {
    /// Import evidence: a HAR 1.2 file, a JSON document {"records": [...]}, or JSON lines of records.
    Import {
        /// The file ("-" reads standard input).
        file: PathBuf,
    },
    /// Export records with their seals.
    Export {
        /// har or jsonl.
        #[arg(long = "as", value_parser = ["har", "jsonl"], default_value = "har")]
        kind: String,
        /// Only this run.
        #[arg(long)]
        run_id: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// The server's record-signing public key, as JSON: what `evaluate --public-key` takes to verify an
    /// export offline.
    PublicKey {
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// A file as an import document; JSON lines become `{"records": [...]}`.
fn import_document(file: &PathBuf) -> anyhow::Result<Value> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    if let Ok(document) = serde_json::from_str::<Value>(&text) {
        return Ok(document);
    }
    let records = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(index, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{} line {}: not JSON", file.display(), index + 1))
        })
        .collect::<anyhow::Result<Vec<Value>>>()?;
    Ok(json!({"records": records}))
}

pub async fn records(command: RecordsCommand, args: &ClientArgs) -> anyhow::Result<()> {
    let client = args.client()?;
    match command {
        RecordsCommand::Import { file } => {
            let imported = client.import_records(&import_document(&file)?).await?;
            match args.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&imported)?),
                Format::Table | Format::Junit => {
                    println!("Imported {} records", imported["imported"]);
                    for id in imported["ids"].as_array().into_iter().flatten() {
                        println!("{}", id.as_str().unwrap_or_default());
                    }
                    let kept = imported["already_stored"].as_array().map_or(0, Vec::len);
                    if kept > 0 {
                        println!("{kept} already stored, left as they were");
                    }
                }
            }
        }
        RecordsCommand::Export {
            kind,
            run_id,
            output,
        } => {
            let text = client.export_records(&kind, run_id.as_deref()).await?;
            write_out(output, &text)?;
        }
        RecordsCommand::PublicKey { output } => {
            let key = client.record_public_key().await?;
            write_out(
                output,
                &format!("{}\n", serde_json::to_string_pretty(&key)?),
            )?;
        }
    }
    Ok(())
}

fn write_out(output: Option<PathBuf>, text: &str) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            print!("{text}");
            Ok(())
        }
    }
}
