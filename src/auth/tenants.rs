//! Tenants (docs/api.md §1.4, docs/api.md §5.2): named rows an admin manages. Every key, packet, record and evaluation already
//! carries a tenant id; a tenant row adds a name, a tier label and quotas. Deleting a tenant is soft: the row
//! keeps its id with `deleted_at` set and disappears from the API, and a new tenant may take its name.

use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};

/// The tenant every bootstrap key belongs to; seeded by the first migration of this table.
pub const DEFAULT_TENANT_NAME: &str = "Default Tenant";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    /// Free text in the reference (`free`, `pro`, `business` by convention).
    pub tier: String,
    pub handoffs_per_day: i64,
    pub max_api_keys: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

/// `POST /tenants`.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
pub struct TenantCreate {
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    pub name: String,
    #[serde(default = "default_tier")]
    pub tier: String,
    #[serde(default = "default_quota", deserialize_with = "crate::lax::integer")]
    #[schema(minimum = 0)]
    pub handoffs_per_day: i64,
    #[serde(default = "default_quota", deserialize_with = "crate::lax::integer")]
    #[schema(minimum = 0)]
    pub max_api_keys: i64,
}

fn default_tier() -> String {
    "free".into()
}

fn default_quota() -> i64 {
    5
}

/// `PATCH /tenants/{id}`: any subset; absent and null leave a field as it is.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct TenantChanges {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    pub name: Option<String>,
    #[serde(default)]
    pub tier: Option<String>,
    #[serde(default, deserialize_with = "crate::lax::optional_integer")]
    #[schema(minimum = 0)]
    pub handoffs_per_day: Option<i64>,
    #[serde(default, deserialize_with = "crate::lax::optional_integer")]
    #[schema(minimum = 0)]
    pub max_api_keys: Option<i64>,
}

impl TenantChanges {
    /// The changes as stored: a name without surrounding blanks.
    pub fn trimmed(mut self) -> Self {
        self.name = self.name.map(|name| name.trim().to_string());
        self
    }
}

/// Why a tenant write did not apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantWrite {
    Done,
    /// Another live tenant has that name.
    NameTaken,
    /// No live tenant with that id.
    NotFound,
}

/// What is wrong with a name of something a user registers (a tenant, a schema): the reference allows
/// 1–128 characters, not all blank.
pub fn name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        Some("String should have at least 1 character".to_string())
    } else if name.chars().count() > 128 {
        Some("String should have at most 128 characters".to_string())
    } else {
        None
    }
}

/// What is wrong with a name or quota, as (field, message).
pub fn check(
    name: Option<&str>,
    quotas: [(&'static str, Option<i64>); 2],
) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if let Some(problem) = name.and_then(name_problem) {
        problems.push(("name", problem));
    }
    for (field, value) in quotas {
        if value.is_some_and(|value| value < 0) {
            problems.push((
                field,
                "Input should be greater than or equal to 0".to_string(),
            ));
        }
    }
    problems
}

impl Tenant {
    pub fn new(request: TenantCreate, now: Timestamp) -> Tenant {
        Tenant {
            id: uuid::Uuid::new_v4().to_string(),
            name: request.name.trim().to_string(),
            tier: request.tier,
            handoffs_per_day: request.handoffs_per_day,
            max_api_keys: request.max_api_keys,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        }
    }
}
