//! A tenant's own trusted endpoints, managed through `/api/v1/trusted-endpoints`, and the trust list they
//! form together with the rules' `[[trusted]]` entries.

use super::file::Rules;
use super::pattern::{EndpointPattern, InvalidTemplate};
use super::store::TrustStore;
use crate::persistence::StoreError;
use crate::timestamp::Timestamp;
use serde::Serialize;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TrustedEndpoint {
    pub id: Uuid,
    pub url: String,
    /// Upper-case methods; empty means any.
    pub methods: Vec<String>,
    pub created_at: Timestamp,
}

impl TrustedEndpoint {
    /// A new endpoint, if `url` is a valid template.
    pub fn new(url: &str, methods: &[String]) -> Result<TrustedEndpoint, InvalidTemplate> {
        EndpointPattern::parse(url, methods)?;
        let mut methods: Vec<String> = methods
            .iter()
            .map(|method| method.trim().to_ascii_uppercase())
            .collect();
        methods.sort();
        methods.dedup();
        Ok(TrustedEndpoint {
            id: Uuid::now_v7(),
            url: url.trim().to_string(),
            methods,
            created_at: Timestamp::now(),
        })
    }

    /// The matcher; stored endpoints were validated when created.
    pub fn pattern(&self) -> Result<EndpointPattern, InvalidTemplate> {
        EndpointPattern::parse(&self.url, &self.methods)
    }
}

/// Everything a tenant trusts: its own endpoints and the rules' `[[trusted]]`. When empty, the trust gate
/// is off (docs/evaluator.md: trust applies "when the tenant has any trusted endpoints configured").
#[derive(Clone, Debug, Default)]
pub struct TrustList(Vec<EndpointPattern>);

impl TrustList {
    pub fn new(rules: &Rules, tenant: &[TrustedEndpoint]) -> TrustList {
        let own = tenant.iter().filter_map(|endpoint| endpoint.pattern().ok());
        TrustList(own.chain(rules.trusted.iter().cloned()).collect())
    }

    /// The rules' trusted endpoints and the tenant's own, as the store has them now.
    pub async fn of_tenant<S: TrustStore + ?Sized>(
        store: &S,
        rules: &Rules,
        tenant: &str,
    ) -> Result<TrustList, StoreError> {
        Ok(TrustList::new(
            rules,
            &store.list_trusted_endpoints(tenant).await?,
        ))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The evaluator's trust gate: whether evidence from `url` with `method` may be used, which it may when
    /// it matches a trusted endpoint or when nothing is trusted (the gate is off).
    pub fn admits(&self, method: &str, url: &str) -> bool {
        self.is_empty() || self.covers(method, url)
    }

    /// Whether a request to `url` with `method` matches any trusted endpoint.
    pub fn covers(&self, method: &str, url: &str) -> bool {
        url::Url::parse(url).is_ok_and(|url| self.covers_url(method, &url))
    }

    /// [`covers`](Self::covers) for a URL already parsed (the proxy has one per request).
    pub fn covers_url(&self, method: &str, url: &url::Url) -> bool {
        self.0
            .iter()
            .any(|pattern| pattern.matches_url(method, url))
    }
}
