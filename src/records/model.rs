//! What a record holds. Bodies are raw bytes (as decoded for storage); on the wire and in the canonical
//! form they are standard base64, so any byte sequence survives exactly.

use crate::timestamp::Timestamp;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provenance {
    /// Captured by the interceptor.
    Proxy,
    /// Imported from HAR or JSON lines.
    Import,
}

impl Provenance {
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::Proxy => "proxy",
            Provenance::Import => "import",
        }
    }
}

/// One header line, in the order received; repeated names stay repeated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Header {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Timings {
    pub started_at: Timestamp,
    pub first_byte_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Record {
    /// UUIDv7, minted when the request arrived.
    pub id: Uuid,
    pub tenant_id: String,
    pub run_id: Option<String>,
    pub agent_id: Option<String>,
    pub action: Option<String>,
    pub method: String,
    /// Full URL: scheme, host, port, path and query (repeated keys kept).
    pub url: String,
    pub request_headers: Vec<Header>,
    #[serde(with = "base64_bytes", default)]
    #[schema(value_type = String, format = Byte)]
    pub request_body: Vec<u8>,
    /// Bytes the client sent, which may exceed the stored body when truncated.
    #[serde(deserialize_with = "crate::lax::unsigned")]
    pub request_body_size: u64,
    pub request_truncated: bool,
    #[serde(default, deserialize_with = "crate::lax::optional_unsigned")]
    #[schema(maximum = 65535)]
    pub status: Option<u16>,
    pub response_headers: Vec<Header>,
    #[serde(with = "base64_bytes", default)]
    #[schema(value_type = String, format = Byte)]
    pub response_body: Vec<u8>,
    #[serde(deserialize_with = "crate::lax::unsigned")]
    pub response_body_size: u64,
    pub response_truncated: bool,
    pub timings: Timings,
    pub upstream_error: Option<String>,
    /// The client went away before the exchange ended.
    pub aborted: bool,
    pub provenance: Provenance,
    /// Whether the destination matched a trusted endpoint when captured.
    pub trusted: bool,
}

/// The seal over a record's canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Seal {
    /// SHA-256 of the canonical form, lower-case hex.
    pub sha256: String,
    /// Which record key signed (hex prefix of the SHA-256 of its public key).
    pub key_id: String,
    /// Ed25519 signature of the 32 digest bytes, standard base64.
    pub signature: String,
}

impl Record {
    /// Everything secret in the record, before it is stored: header values the redaction hides (names are
    /// kept as sent) and the URL's credentials and secret query values.
    pub fn redact(&mut self, redaction: &crate::rules::Redaction) {
        for header in self
            .request_headers
            .iter_mut()
            .chain(self.response_headers.iter_mut())
        {
            if redaction.hides_header(&header.name) {
                header.value = crate::rules::redact::REDACTED.to_string();
            }
        }
        self.url = redaction.url(&self.url);
    }

    /// The record without its bodies, as JSON text: what the stores keep beside the body columns.
    pub fn document_without_bodies(&self) -> String {
        super::canonical::document_without_bodies(self)
    }

    /// The inverse of `document_without_bodies`.
    pub fn from_parts(
        document: serde_json::Value,
        request_body: Vec<u8>,
        response_body: Vec<u8>,
    ) -> serde_json::Result<Record> {
        let mut record: Record = serde_json::from_value(document)?;
        record.request_body = request_body;
        record.response_body = response_body;
        Ok(record)
    }

    /// What a listing shows of this record.
    pub fn summary(&self) -> super::listing::RecordSummary {
        super::listing::RecordSummary {
            id: self.id,
            run_id: self.run_id.clone(),
            agent_id: self.agent_id.clone(),
            action: self.action.clone(),
            method: self.method.clone(),
            url: self.url.clone(),
            host: self.host(),
            status: self.status,
            provenance: self.provenance,
            trusted: self.trusted,
            started_at: self.timings.started_at,
            response_body_size: self.response_body_size,
            response_truncated: self.response_truncated,
            upstream_error: self.upstream_error.clone(),
        }
    }

    /// The host of `url`, for listing filters; empty when the URL does not parse.
    pub fn host(&self) -> String {
        url::Url::parse(&self.url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_ascii_lowercase))
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SealedRecord {
    #[serde(flatten)]
    pub record: Record,
    pub seal: Seal,
}

mod base64_bytes {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::redact::REDACTED;
    use crate::rules::Redaction;

    #[test]
    fn secret_headers_are_redacted_whatever_their_case_and_names_are_kept() {
        let headers: Vec<Header> = [
            ("Authorization", "Bearer s3cret"),
            ("accept", "*/*"),
            ("Cookie", "a=b"),
            ("X-API-Key", "hr_x"),
            ("X-Upstream-Token", "t"),
            ("set-cookie", "c=d"),
        ]
        .iter()
        .map(|(name, value)| Header {
            name: name.to_string(),
            value: value.to_string(),
        })
        .collect();
        let mut record: Record = serde_json::from_value(serde_json::json!({
            "id": "01a22157-b598-73b2-84cd-6a5ecfadb6ba", "tenant_id": "t", "method": "GET",
            "url": "https://user:pass@api.example.com/x?token=abc&page=2",
            "request_headers": headers, "response_headers": headers,
            "request_body_size": 0, "request_truncated": false, "response_body_size": 0,
            "response_truncated": false, "timings": {"started_at": "2026-11-21T10:00:00Z"},
            "aborted": false, "provenance": "proxy", "trusted": false,
        }))
        .expect("record");
        record.redact(&Redaction::with(&["x-upstream-token".into()], &[]));
        for list in [&record.request_headers, &record.response_headers] {
            let values: Vec<&str> = list.iter().map(|header| header.value.as_str()).collect();
            assert_eq!(
                values,
                [REDACTED, "*/*", REDACTED, REDACTED, REDACTED, REDACTED]
            );
            assert_eq!(list[0].name, "Authorization", "names are kept as sent");
        }
        assert_eq!(
            record.url,
            format!("https://api.example.com/x?token={REDACTED}&page=2")
        );
    }
}
