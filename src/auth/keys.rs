//! API keys: `hr_` + 43 url-safe characters, stored only as the SHA-256 hex of the whole string.

use crate::timestamp::Timestamp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const DEFAULT_TENANT: &str = "default";
const KEY_PREFIX_LEN: usize = 8;

/// Roles in rising order of power: admin > writer > agent > reader (docs/api.md §5.3).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Agent,
    Writer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Agent => "agent",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [Role::Reader, Role::Agent, Role::Writer, Role::Admin]
            .into_iter()
            .find(|role| role.as_str() == text)
    }

    /// Whether a key of this role may do what `required` allows.
    pub fn grants(self, required: Role) -> bool {
        self >= required
    }
}

/// Service tiers; they set body-size and rate limits (docs/api.md decision 5).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Free,
    Pro,
    Business,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Pro => "pro",
            Tier::Business => "business",
        }
    }

    pub fn parse(text: &str) -> Option<Tier> {
        [Tier::Free, Tier::Pro, Tier::Business]
            .into_iter()
            .find(|tier| tier.as_str() == text)
    }
}

/// A stored key, without its secret.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub key_prefix: String,
    pub tenant_id: String,
    pub role: Role,
    pub tier: Tier,
    pub revoked: bool,
    pub created_at: Timestamp,
    /// A system administrator's key: manages tenants and the keys of every tenant (docs/api.md decision 14). Only the
    /// bootstrap key and `handoffrail keys create --system` make one.
    pub system: bool,
}

impl ApiKey {
    /// Whether this key may act on `tenant`'s keys and settings.
    pub fn administers(&self, tenant: &str) -> bool {
        self.role == Role::Admin && (self.system || self.tenant_id == tenant)
    }
}

/// A key about to be stored, with its plaintext (returned to the caller exactly once).
#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub key: ApiKey,
    pub plaintext: String,
    pub key_hash: String,
    pub rotated_from: Option<Uuid>,
}

impl NewApiKey {
    /// A fresh random key.
    pub fn generate(name: &str, tenant_id: &str, role: Role, tier: Tier) -> Self {
        Self::from_plaintext(generate_key(), name, tenant_id, role, tier)
    }

    /// The same key with a system administrator's scope.
    pub fn system(mut self) -> Self {
        self.key.system = true;
        self
    }

    /// A key whose plaintext the operator chose (`HANDOFFRAIL_ADMIN_KEY`).
    pub fn from_plaintext(
        plaintext: String,
        name: &str,
        tenant_id: &str,
        role: Role,
        tier: Tier,
    ) -> Self {
        let key = ApiKey {
            id: Uuid::new_v4(),
            name: name.to_string(),
            key_prefix: plaintext.chars().take(KEY_PREFIX_LEN).collect(),
            tenant_id: tenant_id.to_string(),
            role,
            tier,
            revoked: false,
            created_at: Timestamp::now(),
            system: false,
        };
        let key_hash = hash_key(&plaintext);
        Self {
            key,
            plaintext,
            key_hash,
            rotated_from: None,
        }
    }
}

/// `hr_` + a [`random_token`]: 46 characters.
pub fn generate_key() -> String {
    format!("hr_{}", random_token())
}

/// 32 random bytes from the operating system, unpadded base64url: 43 characters (keys, session tokens).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_key(plaintext: &str) -> String {
    crate::records::canonical::hex(&Sha256::digest(plaintext.as_bytes()))
}

/// The shape `generate_key` produces; seeded keys must have it too.
pub fn is_well_formed_key(text: &str) -> bool {
    text.strip_prefix("hr_").is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let first = generate_key();
        assert_eq!(first.len(), 46);
        assert!(is_well_formed_key(&first));
        assert_ne!(first, generate_key());
    }

    #[test]
    fn hash_is_sha256_hex_of_the_whole_key() {
        // The FIPS 180-2 test vector for "abc".
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hash_key("hr_x").len(), 64);
    }

    #[test]
    fn malformed_keys_are_recognised() {
        for bad in [
            "",
            "hr_",
            "hr_short",
            "xx_mJfBD7C7CZffZrGqFohCvzMMD7jl_1zB2Uc_RqgyqNY",
            "hr_mJfBD7C7CZffZrGqFohCvzMMD7jl_1zB2Uc_Rqgyq!Y",
        ] {
            assert!(!is_well_formed_key(bad), "{bad}");
        }
        assert!(is_well_formed_key(
            "hr_mJfBD7C7CZffZrGqFohCvzMMD7jl_1zB2Uc_RqgyqNY"
        ));
    }

    #[test]
    fn roles_are_ordered_admin_writer_agent_reader() {
        assert!(Role::Admin.grants(Role::Writer));
        assert!(Role::Writer.grants(Role::Agent));
        assert!(Role::Agent.grants(Role::Reader));
        assert!(!Role::Reader.grants(Role::Agent));
        assert!(!Role::Agent.grants(Role::Writer));
    }

    #[test]
    fn prefix_is_the_first_eight_characters() {
        let key = NewApiKey::generate("n", DEFAULT_TENANT, Role::Admin, Tier::Business);
        assert_eq!(key.key.key_prefix, &key.plaintext[..8]);
        assert_eq!(key.key_hash, hash_key(&key.plaintext));
    }
}
