//! Handoff packets: the model, its state machine, and the commands that apply decided changes to the store.
//!
//! Every change is decided by a pure function of `lifecycle` and written with a conditional update on the
//! packet's revision, so two concurrent writers (in one process or on two instances) cannot both win.

pub mod create;
pub mod history;
pub mod lifecycle;
pub mod listing;
pub mod model;

use crate::store::{Store, StoreError};
use crate::timestamp::Timestamp;
use lifecycle::{Change, Refusal};
use model::{Claimant, HumanResponse, Packet, PacketCreate, PacketUpdate};
use uuid::Uuid;

/// Why a packet command did not apply.
#[derive(Debug)]
pub enum CommandError {
    NotFound(Uuid),
    Refused(Refusal),
    Invalid(create::InvalidPacket),
    Store(StoreError),
}

impl From<StoreError> for CommandError {
    fn from(error: StoreError) -> Self {
        CommandError::Store(error)
    }
}

pub async fn create_packet(
    store: &dyn Store,
    tenant: &str,
    request: PacketCreate,
) -> Result<Packet, CommandError> {
    create::check(&request).map_err(CommandError::Invalid)?;
    let (packet, event) = create::new_packet(request, Timestamp::now());
    store.insert_packet(tenant, &packet, &[event]).await?;
    Ok(packet)
}

pub async fn chain_packet(
    store: &dyn Store,
    tenant: &str,
    parent_id: Uuid,
    request: PacketCreate,
) -> Result<Packet, CommandError> {
    create::check(&request).map_err(CommandError::Invalid)?;
    if store.get_packet(tenant, parent_id).await?.is_none() {
        return Err(CommandError::NotFound(parent_id));
    }
    let (child, events) = create::chained_packet(request, parent_id, Timestamp::now());
    store.insert_packet(tenant, &child, &events).await?;
    Ok(child)
}

pub async fn get_packet(store: &dyn Store, tenant: &str, id: Uuid) -> Result<Packet, CommandError> {
    match store.get_packet(tenant, id).await? {
        Some(stored) => Ok(stored.packet),
        None => Err(CommandError::NotFound(id)),
    }
}

pub async fn claim_packet(
    store: &dyn Store,
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
    store: &dyn Store,
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
    store: &dyn Store,
    tenant: &str,
    id: Uuid,
    update: &PacketUpdate,
) -> Result<Packet, CommandError> {
    apply(store, tenant, id, |packet, now| {
        lifecycle::update(packet, update, now)
    })
    .await
}

pub async fn delete_packet(
    store: &dyn Store,
    tenant: &str,
    id: Uuid,
) -> Result<Packet, CommandError> {
    apply(store, tenant, id, |packet, now| {
        lifecycle::expire(packet, "system:soft_delete", "soft_delete", now)
    })
    .await
}

/// Read, decide, write-if-unchanged; on a lost race, decide again on the fresh packet. The loop ends
/// because every retry follows another writer's successful update.
async fn apply<F>(
    store: &dyn Store,
    tenant: &str,
    id: Uuid,
    decide: F,
) -> Result<Packet, CommandError>
where
    F: Fn(&Packet, Timestamp) -> Result<Change, Refusal>,
{
    loop {
        let stored = store
            .get_packet(tenant, id)
            .await?
            .ok_or(CommandError::NotFound(id))?;
        let change = decide(&stored.packet, Timestamp::now()).map_err(CommandError::Refused)?;
        if store
            .replace_packet(tenant, stored.revision, &change.packet, &change.events)
            .await?
        {
            return Ok(change.packet);
        }
    }
}

/// Expires live packets older than `ttl` (spec §3.2, decision 7); returns how many it expired.
pub async fn expire_stale(
    store: &dyn Store,
    ttl: std::time::Duration,
) -> Result<usize, CommandError> {
    let Some(cutoff) = chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| Timestamp::now().as_datetime().checked_sub_signed(ttl))
        .map(Timestamp::from_datetime)
    else {
        return Ok(0);
    };
    let mut expired = 0;
    for (tenant, id) in store.stale_packet_ids(cutoff, 500).await? {
        let outcome = apply(store, &tenant, id, |packet, now| {
            lifecycle::expire(packet, "system:expiry_task", "ttl_exceeded", now)
        })
        .await;
        match outcome {
            Ok(_) => expired += 1,
            // Deleted or expired by someone else meanwhile: nothing left to do.
            Err(CommandError::Refused(_)) | Err(CommandError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(expired)
}
