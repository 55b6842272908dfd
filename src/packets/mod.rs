//! Handoff packets: the model, its state machine, and the commands that apply decided changes to the store.
//!
//! Every change is decided by a pure function of `lifecycle` and written with a conditional update on the
//! packet's revision, so two concurrent writers (in one process or on two instances) cannot both win.

pub mod create;
pub mod history;
pub mod lifecycle;
pub mod listing;
pub mod model;
pub mod notices;
pub mod schemas;
pub mod stats;
pub mod store;
pub mod verification;

use crate::auth::limits::Limiter;
use crate::auth::store::LimitStore;
use crate::auth::ApiKey;
use crate::evaluations::{EvaluationError, Evaluator, NewEvaluation};
use crate::packets::schemas::{CheckError, ContextRejection, SchemaRegistry};
use crate::persistence::StoreError;
use crate::timestamp::Timestamp;
use lifecycle::{Change, Refusal};
use model::{Claimant, HumanResponse, Packet, PacketCreate, PacketUpdate};
use store::{PacketStore, SchemaStore, StoredPacket};
use uuid::Uuid;

/// Why a packet command did not apply.
#[derive(Debug)]
pub enum CommandError {
    NotFound(Uuid),
    Refused(Refusal),
    Invalid(create::InvalidPacket),
    /// The context does not satisfy the schema named by `schema_id`, or there is no such schema.
    Schema(ContextRejection),
    /// The tenant used every create its key's tier allows today; the next UTC day starts in this many seconds.
    DailyCapReached {
        retry_after: u64,
    },
    /// The sender's claims did not verify and its policy is `reject` (the evaluation is stored; the packet not).
    Rejected(Box<verification::Verification>),
    Store(StoreError),
    /// A bug (the evaluation thread failed): logged, answered as an internal error.
    Internal(String),
}

impl From<CheckError> for CommandError {
    fn from(error: CheckError) -> Self {
        match error {
            CheckError::Rejected(rejection) => CommandError::Schema(rejection),
            CheckError::Store(error) => CommandError::Store(error),
        }
    }
}

impl From<StoreError> for CommandError {
    fn from(error: StoreError) -> Self {
        CommandError::Store(error)
    }
}

/// Spends one of the tenant's packet creates for today (docs/api.md §5.4). A create and a whole batch each
/// spend one, before anything is stored; a chain spends none (it continues a handoff already counted).
pub async fn spend_daily_create(
    limiter: &Limiter,
    store: &dyn LimitStore,
    key: &ApiKey,
) -> Result<(), CommandError> {
    limiter
        .take_daily_create(store, key, Timestamp::now())
        .await?
        .map_err(|retry_after| CommandError::DailyCapReached { retry_after })
}

/// A create or chain request that passed every check, with the verdict on its claims; only [`admit`] makes one.
pub struct Admitted {
    /// The new packet's id, chosen before its claims are evaluated so that the evaluation names it.
    id: Uuid,
    request: PacketCreate,
    verification: Option<verification::Verification>,
    /// The evaluation of its claims, stored with the packet (in the packet's write).
    evaluation: Option<NewEvaluation>,
}

impl Admitted {
    /// The verdict on the packet's claims, if it came with claims.
    pub fn verification(&self) -> Option<&verification::Verification> {
        self.verification.as_ref()
    }
}

/// The checks every new packet passes before it is stored: docs/api.md §2.4's rules, the registered schema its
/// `schema_id` names, applied to the context with its defaults filled in (docs/api.md §2.1), and its claims'
/// verdict (decision 12), which the sender's policy turns into a hold, a refusal or a flag.
pub async fn admit(
    store: &dyn SchemaStore,
    schemas: &SchemaRegistry,
    evaluator: &Evaluator<'_>,
    mut request: PacketCreate,
) -> Result<Admitted, CommandError> {
    create::check(&request).map_err(CommandError::Invalid)?;
    if let Some(schema_id) = &request.schema_id {
        let context = serde_json::to_value(&request.context)
            .map_err(|error| CommandError::Store(StoreError::Corrupt(error.to_string())))?;
        schemas
            .check_context(store, evaluator.tenant, schema_id, &context)
            .await?;
    }
    if request
        .verification
        .as_ref()
        .is_some_and(|verification| verification.claims.is_empty())
    {
        return Err(CommandError::Invalid(create::InvalidPacket {
            loc: vec!["verification".into(), "claims".into()],
            message: "a verified handoff needs at least one claim".into(),
        }));
    }
    let id = Uuid::new_v4();
    let (verification, evaluation) = match request.verification.take() {
        Some(claims) => {
            let (verdict, evaluation) = verify(evaluator, &claims, id, &mut request).await?;
            (Some(verdict), Some(evaluation))
        }
        None => (None, None),
    };
    Ok(Admitted {
        id,
        request,
        verification,
        evaluation,
    })
}

/// The evaluation of a packet's claims, not yet stored.
async fn evaluate(
    evaluator: &Evaluator<'_>,
    claims: &verification::VerificationRequest,
    packet_id: Uuid,
) -> Result<NewEvaluation, CommandError> {
    crate::evaluations::evaluate(evaluator, &claims.payload(), Some(packet_id))
        .await
        .map_err(|error| match error {
            EvaluationError::Malformed(message) => CommandError::Invalid(create::InvalidPacket {
                loc: vec!["verification".into()],
                message,
            }),
            EvaluationError::Store(error) => CommandError::Store(error),
            EvaluationError::Internal(message) => CommandError::Internal(message),
        })
}

/// Evaluates the sender's claims and applies its policy to the request; the evaluation is stored with the
/// packet, or on its own when the packet is refused.
async fn verify(
    evaluator: &Evaluator<'_>,
    claims: &verification::VerificationRequest,
    packet_id: Uuid,
    request: &mut PacketCreate,
) -> Result<(verification::Verification, NewEvaluation), CommandError> {
    let evaluation = evaluate(evaluator, claims, packet_id).await?;
    let verdict = verification::Verification::of(claims, &evaluation);
    match verdict.policy {
        Some(verification::Policy::Reject) => {
            evaluator
                .store
                .insert_evaluation(evaluator.tenant, &evaluation)
                .await?;
            return Err(CommandError::Rejected(Box::new(verdict)));
        }
        Some(verification::Policy::Hold) => verdict.hold(request),
        Some(verification::Policy::Flag) | None => {}
    }
    Ok((verdict, evaluation))
}

/// `POST /packets/{id}/verify`: the packet's claims evaluated again (evidence may have arrived late); the packet
/// carries the new verdict and its history both.
pub async fn reverify_packet(
    store: &dyn PacketStore,
    evaluator: &Evaluator<'_>,
    id: Uuid,
) -> Result<Packet, CommandError> {
    let stored = store
        .get_packet(evaluator.tenant, id)
        .await?
        .ok_or(CommandError::NotFound(id))?;
    let request = stored
        .packet
        .verification
        .as_ref()
        .ok_or(CommandError::Refused(Refusal::NoClaims))?
        .request();
    let evaluation = evaluate(evaluator, &request, id).await?;
    evaluator
        .store
        .insert_evaluation(evaluator.tenant, &evaluation)
        .await?;
    let renewed = verification::Verification::of(&request, &evaluation);
    apply(store, evaluator.tenant, id, |packet, now| {
        lifecycle::reverified(packet, &renewed, now)
    })
    .await
}

pub async fn create_packet(
    store: &dyn PacketStore,
    tenant: &str,
    admitted: Admitted,
) -> Result<Packet, CommandError> {
    let now = Timestamp::now();
    let change = create::new_packet(admitted.id, admitted.request, admitted.verification, now);
    insert(store, tenant, change, admitted.evaluation, now).await
}

pub async fn chain_packet(
    store: &dyn PacketStore,
    tenant: &str,
    parent_id: Uuid,
    admitted: Admitted,
) -> Result<Packet, CommandError> {
    if store.get_packet(tenant, parent_id).await?.is_none() {
        return Err(CommandError::NotFound(parent_id));
    }
    let now = Timestamp::now();
    let change = create::chained_packet(
        admitted.id,
        admitted.request,
        admitted.verification,
        parent_id,
        now,
    );
    insert(store, tenant, change, admitted.evaluation, now).await
}

/// Stores a new packet with its history, its webhook outbox rows and the evaluation of its claims.
async fn insert(
    store: &dyn PacketStore,
    tenant: &str,
    change: Change,
    mut evaluation: Option<NewEvaluation>,
    now: Timestamp,
) -> Result<Packet, CommandError> {
    let deadline = lifecycle::hitl_deadline(None, &change.packet, now);
    let mut announcement = change.announcement(tenant);
    if let Some(evaluation) = &mut evaluation {
        announcement.extend(std::mem::take(&mut evaluation.announcement));
    }
    store
        .insert_packet(
            tenant,
            &change.packet,
            &change.events,
            &announcement,
            deadline,
            evaluation.as_ref(),
        )
        .await?;
    Ok(change.packet)
}

pub async fn get_packet(
    store: &dyn PacketStore,
    tenant: &str,
    id: Uuid,
) -> Result<Packet, CommandError> {
    match store.get_packet(tenant, id).await? {
        Some(stored) => Ok(stored.packet),
        None => Err(CommandError::NotFound(id)),
    }
}

pub async fn claim_packet(
    store: &dyn PacketStore,
    tenant: &str,
    id: Uuid,
    claimant: &Claimant,
) -> Result<Packet, CommandError> {
    apply(store, tenant, id, |packet, now| {
        lifecycle::claim(packet, claimant, now)
    })
    .await
}

pub async fn respond_to_checkpoint(
    store: &dyn PacketStore,
    tenant: &str,
    id: Uuid,
    answer: &HumanResponse,
) -> Result<Packet, CommandError> {
    apply(store, tenant, id, |packet, now| {
        lifecycle::respond(packet, answer, now)
    })
    .await
}

pub async fn update_packet(
    store: &dyn PacketStore,
    tenant: &str,
    id: Uuid,
    update: &PacketUpdate,
) -> Result<Packet, CommandError> {
    apply(store, tenant, id, |packet, now| {
        lifecycle::update(packet, update, now)
    })
    .await
}

/// One packet of a batch complete.
pub async fn complete_in_batch(
    store: &dyn PacketStore,
    tenant: &str,
    id: Uuid,
) -> Result<Packet, CommandError> {
    apply(store, tenant, id, lifecycle::complete_in_batch).await
}

pub async fn delete_packet(
    store: &dyn PacketStore,
    tenant: &str,
    id: Uuid,
) -> Result<Packet, CommandError> {
    apply(store, tenant, id, |packet, now| {
        lifecycle::expire(packet, "system:soft_delete", "soft_delete", now)
    })
    .await
}

/// Applies a change that is always decided (or refused) on the current packet.
async fn apply<F>(
    store: &dyn PacketStore,
    tenant: &str,
    id: Uuid,
    decide: F,
) -> Result<Packet, CommandError>
where
    F: Fn(&Packet, Timestamp) -> Result<Change, Refusal>,
{
    let (packet, _) = apply_if(store, tenant, id, |stored, now| {
        decide(&stored.packet, now).map(Some)
    })
    .await?;
    Ok(packet)
}

/// Read, decide, write-if-unchanged; on a lost race, decide again on the fresh packet. The loop ends
/// because every retry follows another writer's successful update. `decide` may find nothing to do
/// (`Ok(None)`); then the current packet is returned with `false`.
async fn apply_if<F>(
    store: &dyn PacketStore,
    tenant: &str,
    id: Uuid,
    decide: F,
) -> Result<(Packet, bool), CommandError>
where
    F: Fn(&StoredPacket, Timestamp) -> Result<Option<Change>, Refusal>,
{
    loop {
        let stored = store
            .get_packet(tenant, id)
            .await?
            .ok_or(CommandError::NotFound(id))?;
        let now = Timestamp::now();
        let Some(change) = decide(&stored, now).map_err(CommandError::Refused)? else {
            return Ok((stored.packet, false));
        };
        let deadline = lifecycle::hitl_deadline(
            Some((&stored.packet, stored.hitl_deadline)),
            &change.packet,
            now,
        );
        if store
            .replace_packet(
                tenant,
                stored.revision,
                &change.packet,
                &change.events,
                &change.announcement(tenant),
                deadline,
            )
            .await?
        {
            return Ok((change.packet, true));
        }
    }
}

/// Expires live packets older than `ttl` and waiting packets past their checkpoint's deadline (docs/api.md §3.2,
/// docs/api.md decision 7); returns how many it expired.
pub async fn expire_stale(
    store: &dyn PacketStore,
    ttl: std::time::Duration,
) -> Result<usize, CommandError> {
    const BATCH: i64 = 500;
    let now = Timestamp::now();
    let Some(cutoff) = chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| now.as_datetime().checked_sub_signed(ttl))
        .map(Timestamp::from_datetime)
    else {
        return Ok(0);
    };
    let mut expired = 0;
    loop {
        let due = store.due_for_expiry(cutoff, now, BATCH).await?;
        let mut progressed = false;
        for (tenant, id) in &due {
            let outcome = apply_if(store, tenant, *id, |stored, now| {
                match lifecycle::expiry_due(&stored.packet, stored.hitl_deadline, cutoff, now) {
                    Some(reason) => lifecycle::expire(
                        &stored.packet,
                        "system:expiry_task",
                        reason.as_str(),
                        now,
                    )
                    .map(Some),
                    // Answered, finished or refreshed since it was listed.
                    None => Ok(None),
                }
            })
            .await;
            match outcome {
                Ok((_, true)) => {
                    expired += 1;
                    progressed = true;
                }
                Ok((_, false)) | Err(CommandError::NotFound(_)) | Err(CommandError::Refused(_)) => {
                }
                Err(error) => return Err(error),
            }
        }
        if (due.len() as i64) < BATCH || !progressed {
            return Ok(expired);
        }
    }
}
