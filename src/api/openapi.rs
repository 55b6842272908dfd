//! The OpenAPI 3.1 document (decision 11): its frame here, its paths and schemas from the `#[utoipa::path]`
//! annotations of the handlers that the router is built from.

use super::{api_routes, ops, AppState};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

/// The document's frame; the paths and schemas come from the routes themselves.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "HandoffRail",
        description = "Handoff packets, intercepted evidence and claim verification for multi-agent AI systems. \
            Every `/api/v1` route needs an `X-API-Key` header; every error is a JSON object with `detail`.",
    ),
    modifiers(&ApiKeySecurity),
    security(("api_key" = [])),
    tags(
        (name = "packets", description = "Handoff packets and their lifecycle"),
        (name = "batch", description = "Up to 50 packets per call, each applied on its own"),
        (name = "keys", description = "API keys (admin)"),
        (name = "tenants", description = "Tenants (admin, global)"),
        (name = "schemas", description = "JSON Schemas for packet contexts"),
        (name = "audit", description = "The tenant's audit log"),
        (name = "stats", description = "Packet statistics and system health (admin)"),
        (name = "records", description = "Evidence recorded by the proxy"),
        (name = "evaluations", description = "Claims verified against evidence"),
        (name = "trust", description = "Trusted endpoints"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
struct ApiDoc;

struct ApiKeySecurity;

impl Modify for ApiKeySecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// The OpenAPI 3.1 document of every route [`super::router`] serves: both are built from the same registrations,
/// so a route cannot be served without being documented.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api_routes())
        .merge(ops::routes())
        .into_openapi();
    // Handlers are named for what they do within their module (`create`, `list`); prefixed with the
    // tag, the operation ids are unique across the document, as OpenAPI requires.
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let tag = operation
                .tags
                .as_ref()
                .and_then(|tags| tags.first())
                .cloned();
            if let (Some(tag), Some(id)) = (tag, operation.operation_id.as_mut()) {
                *id = format!("{tag}_{id}");
            }
        }
    }
    document
}
