//! `handoffrail evaluate PAYLOAD.json`: the CI gate (docs/evaluator.md "Command line"). Online it asks a server;
//! offline (`--records FILE`) it imports the file into a private, temporary embedded store through the same
//! import path and runs the same evaluation, so both give identical per-claim results.
//! Exit codes: 0 PASS, 1 CAUGHT, 2 ERROR (also when the server cannot be reached), 64 usage or input errors.

use super::{ClientArgs, Format};
use crate::auth::DEFAULT_TENANT;
use crate::client::{Client, ClientError};
use crate::evaluations::{run_evaluation, Capacity, EvaluationError, Evaluator, StoredEvaluation};
use crate::records::import::{self, Importer};
use crate::records::{Keyring, RecordKey};
use crate::rules::{Rules, TrustList};
use crate::store::{self, StoreOptions};
use crate::verify::Outcome;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub const USAGE: u8 = 64;

#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// The payload: JSON with `claims` (and optionally `run_id`, `agent_id`, `answer`); "-" reads stdin.
    pub payload: PathBuf,
    /// Evaluate offline against this HAR 1.2 or JSON-lines file; no server, no database.
    #[arg(long)]
    pub records: Option<PathBuf>,
    /// Rules directory for offline evaluation (trusted endpoints, action rules, redaction).
    #[arg(long, requires = "records")]
    pub rules: Option<PathBuf>,
    /// The record-signing public key of the server that exported --records (base64, or a file holding it or
    /// the JSON of GET /api/v1/records/public-key); repeatable. Records sealed by it are verified: an altered
    /// one is CAUGHT evidence_tampered. Records sealed by other keys count as plain imports.
    #[arg(long = "public-key", value_name = "KEY", requires = "records")]
    pub public_keys: Vec<String>,
    /// Also write the result, in --format, to this file.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// Why the gate could not give a verdict.
enum Failure {
    /// The caller's input: exit 64.
    Input(String),
    /// Infrastructure: exit 2, like an ERROR verdict.
    Infrastructure(String),
}

pub async fn run(args: EvaluateArgs, client: &ClientArgs) -> ExitCode {
    match evaluate(&args, client).await {
        Ok(evaluation) => {
            let rendered = render(&evaluation, client.format);
            print!("{rendered}");
            if let Some(path) = &args.output {
                if let Err(error) = std::fs::write(path, &rendered) {
                    eprintln!("Error: cannot write {}: {error}", path.display());
                    return ExitCode::from(USAGE);
                }
            }
            ExitCode::from(match evaluation.outcome {
                Outcome::Pass => 0,
                Outcome::Caught => 1,
                Outcome::Error => 2,
            })
        }
        Err(Failure::Input(message)) => {
            eprintln!("Error: {message}");
            ExitCode::from(USAGE)
        }
        Err(Failure::Infrastructure(message)) => {
            eprintln!("Error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn evaluate(args: &EvaluateArgs, client: &ClientArgs) -> Result<StoredEvaluation, Failure> {
    let payload = read_payload(&args.payload)?;
    match &args.records {
        Some(records) => offline(&payload, records, args.rules.as_deref(), &args.public_keys).await,
        None => online(&payload, client).await,
    }
}

fn read_payload(path: &Path) -> Result<Value, Failure> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|error| Failure::Input(format!("reading stdin: {error}")))?
    } else {
        std::fs::read_to_string(path)
            .map_err(|error| Failure::Input(format!("reading {}: {error}", path.display())))?
    };
    serde_json::from_str(&text)
        .map_err(|error| Failure::Input(format!("{} is not JSON: {error}", path.display())))
}

async fn online(payload: &Value, args: &ClientArgs) -> Result<StoredEvaluation, Failure> {
    let key = args.api_key.as_deref().filter(|key| !key.is_empty()).ok_or_else(|| {
        Failure::Input("API key required for online evaluation. Use --api-key or HANDOFFRAIL_API_KEY, or --records for offline.".into())
    })?;
    let client = Client::new(&args.server_url, key)
        .map_err(|error| Failure::Infrastructure(error.to_string()))?;
    client.evaluate(payload).await.map_err(|error| match error {
        ClientError::Connection(_)
        | ClientError::Server { .. }
        | ClientError::Decode(_)
        | ClientError::RateLimited(_) => Failure::Infrastructure(error.to_string()),
        other => Failure::Input(other.to_string()),
    })
}

/// A scratch directory removed when the evaluation is done, whatever happens.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `--public-key` as given: the key itself, or a file holding it (bare or as the public-key endpoint's JSON).
fn public_key_text(given: &str) -> Result<String, Failure> {
    let path = Path::new(given);
    if !path.is_file() {
        return Ok(given.to_string());
    }
    let text = std::fs::read_to_string(path)
        .map_err(|error| Failure::Input(format!("reading {given}: {error}")))?;
    match serde_json::from_str::<Value>(&text) {
        Ok(document) => document
            .get("public_key")
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| {
                Failure::Input(format!("{given}: JSON without a \"public_key\" string"))
            }),
        Err(_) => Ok(text),
    }
}

async fn offline(
    payload: &Value,
    records: &Path,
    rules: Option<&Path>,
    public_keys: &[String],
) -> Result<StoredEvaluation, Failure> {
    let rules = match rules {
        Some(dir) => Rules::load_dir(dir).map_err(|error| Failure::Input(error.to_string()))?,
        None => Rules::default(),
    };
    let text = std::fs::read_to_string(records)
        .map_err(|error| Failure::Input(format!("reading {}: {error}", records.display())))?;
    let parsed = import::parse_text(&text, DEFAULT_TENANT)
        .map_err(|error| Failure::Input(format!("{}: {error}", records.display())))?;
    let scratch = Scratch(
        std::env::temp_dir().join(format!("handoffrail-evaluate-{}", uuid::Uuid::new_v4())),
    );
    std::fs::create_dir_all(&scratch.0)
        .map_err(|error| Failure::Infrastructure(error.to_string()))?;
    let url = format!("sqlite://{}", scratch.0.join("evidence.db").display());
    let store = store::open(&url, &StoreOptions::default())
        .await
        .map_err(|error| Failure::Infrastructure(format!("{error:#}")))?;
    let key = RecordKey::generate();
    let mut keyring = Keyring::of(&key);
    for given in public_keys {
        keyring
            .add_base64(&public_key_text(given)?)
            .map_err(|error| Failure::Input(format!("--public-key {given}: {error}")))?;
    }
    let unverifiable = parsed
        .iter()
        .filter_map(|incoming| incoming.seal.as_ref())
        .filter(|seal| !keyring.knows(&seal.key_id))
        .count();
    if unverifiable > 0 {
        eprintln!(
            "warning: {unverifiable} record(s) in {} are sealed by a key not given with --public-key; they count as unverified imports",
            records.display()
        );
    }
    let importer = Importer {
        tenant: DEFAULT_TENANT,
        redaction: &rules.redaction,
        trust: &TrustList::new(&rules, &[]),
        keyring: &keyring,
        key: &key,
        keep_foreign_ids: true,
    };
    let sealed = importer.prepare(parsed);
    store
        .insert_records(&sealed)
        .await
        .map_err(|error| Failure::Infrastructure(error.to_string()))?;
    let evaluator = Evaluator {
        store: store.as_ref(),
        record_key: std::sync::Arc::new(key),
        rules: std::sync::Arc::new(rules),
        tenant: DEFAULT_TENANT,
        capacity: &Capacity::default(),
    };
    run_evaluation(&evaluator, payload)
        .await
        .map_err(|error| match error {
            EvaluationError::Malformed(message) => {
                Failure::Input(format!("invalid payload: {message}"))
            }
            EvaluationError::Store(error) => Failure::Infrastructure(error.to_string()),
            EvaluationError::Internal(error) => Failure::Infrastructure(error),
        })
}

fn render(evaluation: &StoredEvaluation, format: Format) -> String {
    match format {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(evaluation).unwrap_or_default()
        ),
        Format::Junit => junit(evaluation),
        Format::Table => text(evaluation),
    }
}

fn shown(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(text)) => format!("{text:?}"),
        Some(other) => other.to_string(),
        None => "—".into(),
    }
}

/// One line per claim with claimed vs actual, then the verdict: readable in a CI log.
fn text(evaluation: &StoredEvaluation) -> String {
    let mut out = String::new();
    for claim in &evaluation.per_claim {
        let reason = claim.reason.as_str();
        // Range and presence claims state no value; an exact claim of null does.
        let claimed = match claim.verification_mode.as_deref() {
            Some("range_threshold" | "presence") if claim.claimed.is_null() => String::new(),
            _ => format!("claimed {}, ", shown(Some(&claim.claimed))),
        };
        out.push_str(&format!(
            "{:<6}  #{} {} {} {}: {claimed}actual {} [{reason}]",
            claim.result.as_str(),
            claim.index,
            claim.action_name.as_deref().unwrap_or("?"),
            claim.verification_mode.as_deref().unwrap_or("?"),
            claim.json_path,
            shown(claim.actual.as_ref()),
        ));
        if let Some(detail) = claim
            .detail
            .as_deref()
            .filter(|_| claim.result != Outcome::Pass)
        {
            out.push_str(&format!(" — {detail}"));
        }
        out.push('\n');
    }
    for error in &evaluation.errors {
        out.push_str(&format!("ERROR   {error}\n"));
    }
    let counts = evaluation.counts;
    out.push_str(&format!(
        "{}: {} pass, {} caught, {} error (evaluation {})\n",
        evaluation.outcome.as_str(),
        counts.pass,
        counts.caught,
        counts.error,
        evaluation.id
    ));
    out
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// JUnit XML: one test case per claim; CAUGHT is a failure, ERROR an error.
fn junit(evaluation: &StoredEvaluation) -> String {
    let counts = evaluation.counts;
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"handoffrail evaluate\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.6}\">\n",
        evaluation.per_claim.len(),
        counts.caught,
        counts.error,
        evaluation.duration_ms / 1000.0
    );
    for claim in &evaluation.per_claim {
        let name = format!(
            "#{} {} {}",
            claim.index,
            claim.verification_mode.as_deref().unwrap_or("?"),
            claim.json_path
        );
        out.push_str(&format!(
            "  <testcase classname=\"{}\" name=\"{}\">",
            xml(claim.action_name.as_deref().unwrap_or("claim")),
            xml(&name)
        ));
        let reason = claim.reason.as_str();
        let detail = xml(claim.detail.as_deref().unwrap_or_default());
        match claim.result {
            Outcome::Pass => {}
            Outcome::Caught => {
                out.push_str(&format!("<failure message=\"{reason}\">{detail}</failure>"))
            }
            Outcome::Error => {
                out.push_str(&format!("<error message=\"{reason}\">{detail}</error>"))
            }
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("</testsuite>\n");
    out
}
