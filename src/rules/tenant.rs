//! A tenant's own trusted endpoint, managed through `/api/v1/trusted-endpoints`.

use super::pattern::{EndpointPattern, InvalidTemplate};
use crate::timestamp::Timestamp;
use serde::Serialize;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
