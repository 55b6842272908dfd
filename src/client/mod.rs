//! A typed HTTP client for the packet API, used by the CLI. Errors carry the server's `detail` and map to
//! the same categories as the Python SDK's exceptions.

use crate::packets::history::PacketEvent;
use crate::packets::model::Packet;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("Authentication failed: {0}")]
    Authentication(String),
    #[error("Not found: {0}")]
    NotFound(String),
    #[error("Validation error: {0}")]
    Validation(String),
    #[error("Permission denied: {0}")]
    Forbidden(String),
    #[error("Rate limit exceeded. Retry after {0}s.")]
    RateLimited(u64),
    #[error("Server error ({status}): {detail}")]
    Server { status: u16, detail: String },
    #[error("Connection error: {0}")]
    Connection(String),
    #[error("Unexpected response: {0}")]
    Decode(String),
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PacketList {
    pub packets: Vec<Packet>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct History {
    pub packet_id: String,
    pub events: Vec<PacketEvent>,
}

/// Query of `GET /packets`; empty fields are not sent.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ListFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

pub struct Client {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
}

impl Client {
    /// `server_url` may name the API root (`…/api/v1`) or just the server (`http://host:8080`).
    pub fn new(server_url: &str, api_key: &str) -> Result<Self, ClientError> {
        let trimmed = server_url.trim_end_matches('/');
        let base_url = if trimmed.ends_with("/api/v1") {
            trimmed.to_string()
        } else {
            format!("{trimmed}/api/v1")
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|error| ClientError::Connection(error.to_string()))?;
        Ok(Self {
            http,
            base_url,
            api_key: api_key.to_string(),
        })
    }

    pub async fn create_packet(&self, packet: &Value) -> Result<Packet, ClientError> {
        self.send(Method::POST, "/packets", Some(packet), None::<&()>)
            .await
    }

    pub async fn get_packet(&self, id: &str) -> Result<Packet, ClientError> {
        self.send(Method::GET, &format!("/packets/{id}"), None, None::<&()>)
            .await
    }

    pub async fn list_packets(&self, filter: &ListFilter) -> Result<PacketList, ClientError> {
        self.send(Method::GET, "/packets", None, Some(filter)).await
    }

    pub async fn claim_packet(
        &self,
        id: &str,
        agent_id: &str,
        agent_name: &str,
        framework: Option<&str>,
    ) -> Result<Packet, ClientError> {
        let body = json!({"agent_id": agent_id, "agent_name": agent_name, "framework": framework});
        self.send(
            Method::POST,
            &format!("/packets/{id}/claim"),
            Some(&body),
            None::<&()>,
        )
        .await
    }

    pub async fn respond(
        &self,
        id: &str,
        response: &str,
        responded_by: &str,
        notes: Option<&str>,
    ) -> Result<Packet, ClientError> {
        let body = json!({"response": response, "responded_by": responded_by, "notes": notes});
        self.send(
            Method::POST,
            &format!("/packets/{id}/respond"),
            Some(&body),
            None::<&()>,
        )
        .await
    }

    pub async fn set_status(&self, id: &str, status: &str) -> Result<Packet, ClientError> {
        let body = json!({"status": status});
        self.send(
            Method::PATCH,
            &format!("/packets/{id}"),
            Some(&body),
            None::<&()>,
        )
        .await
    }

    pub async fn evaluate(
        &self,
        payload: &Value,
    ) -> Result<crate::evaluations::StoredEvaluation, ClientError> {
        self.send(Method::POST, "/evaluations", Some(payload), None::<&()>)
            .await
    }

    pub async fn import_records(&self, document: &Value) -> Result<Value, ClientError> {
        self.send(Method::POST, "/records", Some(document), None::<&()>)
            .await
    }

    /// The record-signing public key, as `GET /records/public-key` returns it.
    pub async fn record_public_key(&self) -> Result<Value, ClientError> {
        self.send(Method::GET, "/records/public-key", None, None::<&()>)
            .await
    }

    /// The export as text (HAR JSON or JSON lines).
    pub async fn export_records(
        &self,
        format: &str,
        run_id: Option<&str>,
    ) -> Result<String, ClientError> {
        let mut query = vec![("format", format.to_string())];
        if let Some(run) = run_id {
            query.push(("run_id", run.to_string()));
        }
        let response = self
            .http
            .get(format!("{}/records/export", self.base_url))
            .header("X-API-Key", &self.api_key)
            .query(&query)
            .send()
            .await
            .map_err(|error| ClientError::Connection(crate::describe_error(&error)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|error| ClientError::Connection(error.to_string()))?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(ClientError::Server {
                status: status.as_u16(),
                detail: error_detail(text.as_bytes()),
            })
        }
    }

    pub async fn trusted_endpoints(&self) -> Result<Vec<Value>, ClientError> {
        self.send(Method::GET, "/trusted-endpoints", None, None::<&()>)
            .await
    }

    pub async fn add_trusted_endpoint(
        &self,
        url: &str,
        methods: &[String],
    ) -> Result<Value, ClientError> {
        let body = json!({"url": url, "methods": methods});
        self.send(Method::POST, "/trusted-endpoints", Some(&body), None::<&()>)
            .await
    }

    pub async fn remove_trusted_endpoint(&self, id: &str) -> Result<(), ClientError> {
        let response = self
            .http
            .delete(format!("{}/trusted-endpoints/{id}", self.base_url))
            .header("X-API-Key", &self.api_key)
            .send()
            .await
            .map_err(|error| ClientError::Connection(crate::describe_error(&error)))?;
        match response.status() {
            status if status.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(ClientError::NotFound(format!(
                "Trusted endpoint {id} not found"
            ))),
            status => {
                let text = response.text().await.unwrap_or_default();
                Err(ClientError::Server {
                    status: status.as_u16(),
                    detail: error_detail(text.as_bytes()),
                })
            }
        }
    }

    pub async fn history(&self, id: &str) -> Result<History, ClientError> {
        self.send(
            Method::GET,
            &format!("/packets/{id}/history"),
            None,
            None::<&()>,
        )
        .await
    }

    async fn send<T: DeserializeOwned, Q: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        query: Option<&Q>,
    ) -> Result<T, ClientError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .header("X-API-Key", &self.api_key);
        if let Some(query) = query {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| ClientError::Connection(crate::describe_error(&error)))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .unwrap_or(1);
        let bytes = response
            .bytes()
            .await
            .map_err(|error| ClientError::Connection(error.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|error| ClientError::Decode(error.to_string()));
        }
        let detail = error_detail(&bytes);
        Err(match status {
            StatusCode::UNAUTHORIZED => ClientError::Authentication(detail),
            StatusCode::FORBIDDEN => ClientError::Forbidden(detail),
            StatusCode::NOT_FOUND | StatusCode::GONE => ClientError::NotFound(detail),
            StatusCode::BAD_REQUEST | StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY => {
                ClientError::Validation(detail)
            }
            StatusCode::TOO_MANY_REQUESTS => ClientError::RateLimited(retry_after),
            other => ClientError::Server {
                status: other.as_u16(),
                detail,
            },
        })
    }
}

/// The server's `detail`, flattened to one line: a string, the message of an object, or the 422 list.
fn error_detail(bytes: &[u8]) -> String {
    let Ok(body) = serde_json::from_slice::<Value>(bytes) else {
        return String::from_utf8_lossy(bytes).trim().to_string();
    };
    match body.get("detail") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Object(object)) => match object.get("message") {
            Some(Value::String(message)) => message.clone(),
            _ => Value::Object(object.clone()).to_string(),
        },
        Some(Value::Array(issues)) => issues
            .iter()
            .map(|issue| {
                let loc: Vec<String> = issue["loc"]
                    .as_array()
                    .map(|parts| {
                        parts
                            .iter()
                            .map(|part| part.as_str().map(String::from).unwrap_or(part.to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                format!(
                    "{}: {}",
                    loc.join("."),
                    issue["msg"].as_str().unwrap_or("invalid")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_details_flatten_to_one_line() {
        assert_eq!(
            super::error_detail(br#"{"detail":"Invalid API key"}"#),
            "Invalid API key"
        );
        assert_eq!(
            super::error_detail(
                br#"{"detail":{"message":"Packet x is already claimed","claimed_by":{}}}"#
            ),
            "Packet x is already claimed"
        );
        assert_eq!(
            super::error_detail(
                br#"{"detail":[{"loc":["body","metadata"],"msg":"Field required"}]}"#
            ),
            "body.metadata: Field required"
        );
        assert_eq!(super::error_detail(b"plain"), "plain");
    }
}
