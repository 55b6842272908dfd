//! Client commands over the packet API: create, get, list, claim, respond, history, complete.

use super::output;
use super::{ClientArgs, Command};
use crate::client::{Client, ListFilter};
use crate::packets::model::Status;
use crate::packets::verification::Policy;
use anyhow::{bail, Context};
use serde_json::json;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct IdArg {
    /// Packet id.
    pub id: String,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// JSON file holding a PacketCreate body ("-" reads standard input).
    #[arg(short, long, conflicts_with_all = ["source_id", "source_name", "target_id", "target_name", "summary"])]
    pub file: Option<PathBuf>,
    #[arg(long, requires_all = ["target_id", "summary"])]
    pub source_id: Option<String>,
    /// The source agent's name (default: its id).
    #[arg(long)]
    pub source_name: Option<String>,
    #[arg(long)]
    pub target_id: Option<String>,
    /// The target agent's name (default: its id).
    #[arg(long)]
    pub target_name: Option<String>,
    #[arg(long)]
    pub summary: Option<String>,
    /// low, normal, high or critical.
    #[arg(long)]
    pub priority: Option<String>,
    /// A tag (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// The sender's claims, verified before the packet is stored: a JSON file holding an evaluation payload
    /// (`{"run_id", "agent_id", "claims": [...]}`, as `handoffrail evaluate` reads) or a list of claims.
    #[arg(long)]
    pub claims: Option<PathBuf>,
    /// What a CAUGHT verdict does: hold for a human, reject the packet, or flag it and carry on.
    #[arg(long, value_enum, requires = "claims")]
    pub on_caught: Option<Policy>,
    /// What an ERROR verdict does.
    #[arg(long, value_enum, requires = "claims")]
    pub on_error: Option<Policy>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Comma-separated statuses.
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long)]
    pub source_agent: Option<String>,
    #[arg(long)]
    pub target_agent: Option<String>,
    /// Comma-separated tags, all required.
    #[arg(long)]
    pub tags: Option<String>,
    #[arg(long)]
    pub priority: Option<String>,
    #[arg(long)]
    pub created_after: Option<String>,
    #[arg(long)]
    pub created_before: Option<String>,
    /// PASS, CAUGHT or ERROR (the verdict on the packet's claims), or none (packets without claims).
    #[arg(long)]
    pub verification: Option<String>,
    /// Continue after a previous page (its next_cursor).
    #[arg(long)]
    pub cursor: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
    #[arg(long, default_value_t = 0)]
    pub offset: i64,
}

#[derive(Debug, clap::Args)]
pub struct ClaimArgs {
    /// Packet id.
    pub id: String,
    /// Claiming agent's id.
    #[arg(long)]
    pub agent_id: String,
    /// Claiming agent's name (defaults to its id).
    #[arg(long)]
    pub agent_name: Option<String>,
    #[arg(long)]
    pub framework: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RespondArgs {
    /// Packet id.
    pub id: String,
    #[arg(short, long)]
    pub response: String,
    #[arg(short = 'b', long)]
    pub responded_by: String,
    #[arg(short, long)]
    pub notes: Option<String>,
}

pub async fn run(command: Command, args: &ClientArgs) -> anyhow::Result<()> {
    let Some(api_key) = args.api_key.as_deref().filter(|key| !key.is_empty()) else {
        bail!("API key required. Use --api-key or set HANDOFFRAIL_API_KEY.");
    };
    let client = Client::new(&args.server_url, api_key)?;
    let format = args.format;
    match command {
        Command::Create(create) => {
            let body = create_body(&create)?;
            output::packet(&client.create_packet(&body).await?, format)
        }
        Command::Get(IdArg { id }) => output::packet(&client.get_packet(&id).await?, format),
        Command::List(list) => {
            let filter = ListFilter {
                status: list.status,
                source_agent: list.source_agent,
                target_agent: list.target_agent,
                tags: list.tags,
                priority: list.priority,
                created_after: list.created_after,
                created_before: list.created_before,
                verification: list.verification,
                cursor: list.cursor,
                limit: list.limit,
                offset: list.offset,
            };
            output::packet_list(&client.list_packets(&filter).await?, format)
        }
        Command::Claim(claim) => {
            let name = claim.agent_name.as_deref().unwrap_or(&claim.agent_id);
            let packet = client
                .claim_packet(&claim.id, &claim.agent_id, name, claim.framework.as_deref())
                .await?;
            output::packet(&packet, format)
        }
        Command::Respond(answer) => {
            let packet = client
                .respond(
                    &answer.id,
                    &answer.response,
                    &answer.responded_by,
                    answer.notes.as_deref(),
                )
                .await?;
            output::packet(&packet, format)
        }
        Command::History(IdArg { id }) => output::history(&client.history(&id).await?, format),
        // Claimed or in progress (decision 13); the server names the allowed moves otherwise.
        Command::Complete(IdArg { id }) => output::packet(
            &client.set_status(&id, Status::Completed.as_str()).await?,
            format,
        ),
        Command::Serve(_)
        | Command::Proxy(_)
        | Command::Ca(_)
        | Command::Keys(_)
        | Command::Evaluate(_)
        | Command::Records(_)
        | Command::Trust(_) => {
            unreachable!("dispatched in cli::run")
        }
    }
}

fn create_body(create: &CreateArgs) -> anyhow::Result<serde_json::Value> {
    let mut body = packet_body(create)?;
    if let Some(path) = &create.claims {
        body["verification"] = verification(create, path)?;
    }
    Ok(body)
}

/// `verification` from a claims file: an evaluation payload or a bare list of claims, with the policies given.
fn verification(create: &CreateArgs, path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let claims: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let mut verification = match claims {
        serde_json::Value::Array(_) => json!({"claims": claims}),
        serde_json::Value::Object(mut payload) if payload.contains_key("claims") => {
            // An evaluation payload: the fields a verification takes.
            payload.retain(|key, _| matches!(key.as_str(), "run_id" | "agent_id" | "claims"));
            serde_json::Value::Object(payload)
        }
        _ => bail!(
            "{}: expected a list of claims or an object with \"claims\"",
            path.display()
        ),
    };
    for (field, policy) in [
        ("on_caught", create.on_caught),
        ("on_error", create.on_error),
    ] {
        if let Some(policy) = policy {
            verification[field] = json!(Policy::name(Some(policy)));
        }
    }
    Ok(verification)
}

fn packet_body(create: &CreateArgs) -> anyhow::Result<serde_json::Value> {
    if let Some(path) = &create.file {
        let text = if path.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).context("reading standard input")?
        } else {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        };
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()));
    }
    let (Some(source_id), Some(target_id), Some(summary)) =
        (&create.source_id, &create.target_id, &create.summary)
    else {
        bail!("give --file, or --source-id, --target-id and --summary (names default to the ids)");
    };
    let source_name = create.source_name.as_ref().unwrap_or(source_id);
    let target_name = create.target_name.as_ref().unwrap_or(target_id);
    let mut metadata = json!({
        "source_agent": {"id": source_id, "name": source_name},
        "target_agent": {"id": target_id, "name": target_name},
        "tags": create.tags,
    });
    if let Some(priority) = &create.priority {
        metadata["priority"] = json!(priority);
    }
    Ok(json!({"metadata": metadata, "context": {"summary": summary}}))
}
