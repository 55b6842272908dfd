//! Identity: API keys, roles, tiers and tenants (DESIGN.md "Identity", docs/api.md §5).

pub mod administration;
mod cache;
mod keys;
pub mod limits;
pub mod rbac;
pub mod sessions;
pub mod store;
pub mod tenants;

pub use cache::KeyCache;

pub use keys::{
    generate_key, hash_key, is_well_formed_key, random_token, ApiKey, NewApiKey, Role, Tier,
    DEFAULT_TENANT,
};
