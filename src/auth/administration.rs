//! Key administration (docs/api.md §1.3, decision 14): who may create, revoke and rotate which keys, and what a
//! new key inherits. The API only translates these outcomes to HTTP.

use super::store::{KeyChange, KeyStore};
use super::{ApiKey, NewApiKey, Role, Tier};
use crate::persistence::StoreError;
use uuid::Uuid;

/// `POST /keys`: a name, and optionally another tenant (system administrators only), a role and a tier.
#[derive(Clone, Debug)]
pub struct KeyRequest {
    pub name: String,
    pub tenant_id: Option<String>,
    pub role: Option<Role>,
    pub tier: Option<Tier>,
}

/// Why a key command did not apply.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key name is blank")]
    BlankName,
    /// The target is another tenant's, or a system administrator's key, and the caller is not a system
    /// administrator.
    #[error("{}", super::rbac::SYSTEM_DENIAL)]
    NeedsSystem,
    #[error("API key {0} not found")]
    NotFound(Uuid),
    #[error("API key {0} is already revoked")]
    AlreadyRevoked(Uuid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new key in the caller's tenant (or the one named, for a system administrator); role `admin` and the
/// server's default tier unless asked otherwise.
pub async fn create_key(
    store: &dyn KeyStore,
    caller: &ApiKey,
    request: KeyRequest,
    default_tier: Tier,
) -> Result<NewApiKey, KeyError> {
    let name = request.name.trim();
    if name.is_empty() {
        return Err(KeyError::BlankName);
    }
    let tenant = request
        .tenant_id
        .filter(|tenant| !tenant.trim().is_empty())
        .unwrap_or_else(|| caller.tenant_id.clone());
    if !caller.administers(&tenant) {
        return Err(KeyError::NeedsSystem);
    }
    let key = NewApiKey::generate(
        name,
        &tenant,
        request.role.unwrap_or(Role::Admin),
        request.tier.unwrap_or(default_tier),
    );
    store.insert_api_key(&key).await?;
    Ok(key)
}

/// Revokes a key of the caller's tenant; a system administrator's key only by a system administrator.
pub async fn revoke_key(store: &dyn KeyStore, caller: &ApiKey, id: Uuid) -> Result<(), KeyError> {
    let target = store.get_api_key(&caller.tenant_id, id).await?;
    if target.is_some_and(|key| key.system) && !caller.system {
        return Err(KeyError::NeedsSystem);
    }
    applied(store.revoke_api_key(&caller.tenant_id, id).await?, id)
}

/// Replaces a key of the caller's tenant with a new one named `<name> (rotated)` that inherits its tenant,
/// role, tier and system scope; the old key is revoked in the same write.
pub async fn rotate_key(
    store: &dyn KeyStore,
    caller: &ApiKey,
    id: Uuid,
) -> Result<NewApiKey, KeyError> {
    let old = store
        .get_api_key(&caller.tenant_id, id)
        .await?
        .ok_or(KeyError::NotFound(id))?;
    if old.system && !caller.system {
        return Err(KeyError::NeedsSystem);
    }
    let mut replacement = NewApiKey::generate(
        &format!("{} (rotated)", old.name),
        &old.tenant_id,
        old.role,
        old.tier,
    );
    if old.system {
        replacement = replacement.system();
    }
    replacement.rotated_from = Some(old.id);
    applied(
        store
            .rotate_api_key(&caller.tenant_id, id, &replacement)
            .await?,
        id,
    )?;
    Ok(replacement)
}

fn applied(change: KeyChange, id: Uuid) -> Result<(), KeyError> {
    match change {
        KeyChange::Done => Ok(()),
        KeyChange::AlreadyRevoked => Err(KeyError::AlreadyRevoked(id)),
        KeyChange::NotFound => Err(KeyError::NotFound(id)),
    }
}
