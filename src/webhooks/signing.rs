//! The signatures on a delivery (docs/api.md decision 1): Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`) and the legacy `X-HR-Signature`
//! (hex HMAC-SHA256 of the body alone).
//!
//! The HMAC key is the registered secret's UTF-8 bytes, except that a secret written the Standard Webhooks way
//! (`whsec_` + base64) signs the `v1` signature with the bytes it encodes, as every Standard Webhooks library
//! expects. A receiver using such a library with a plain secret passes it `"whsec_" + base64(secret)`.

use crate::records::canonical::hex;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::hmac;
use std::fmt;

/// A webhook's signing secret: it signs, and is never printed, logged or returned.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// The text to store (the store is the only reader).
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn standard_key(&self) -> Vec<u8> {
        self.0
            .strip_prefix("whsec_")
            .and_then(|encoded| STANDARD.decode(encoded).ok())
            .unwrap_or_else(|| self.0.as_bytes().to_vec())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret(***)")
    }
}

/// The headers that sign one attempt of one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signatures {
    /// `webhook-signature`: `v1,<base64>`.
    pub standard: String,
    /// `X-HR-Signature`: 64 lower-case hex digits.
    pub legacy: String,
}

/// Signs `body` sent as event `event_id` at `timestamp` (Unix seconds, the attempt's time).
pub fn sign(secret: &Secret, event_id: &str, timestamp: i64, body: &[u8]) -> Signatures {
    let standard_key = hmac::Key::new(hmac::HMAC_SHA256, &secret.standard_key());
    let mut context = hmac::Context::with_key(&standard_key);
    context.update(event_id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let standard = format!("v1,{}", STANDARD.encode(context.sign().as_ref()));
    let legacy_key = hmac::Key::new(hmac::HMAC_SHA256, secret.0.as_bytes());
    let legacy = hex(hmac::sign(&legacy_key, body).as_ref());
    Signatures { standard, legacy }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The example of the Standard Webhooks specification (and its libraries' tests).
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        let body = br#"{"test": 2432232314}"#;
        let signatures = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(
            signatures.standard,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn the_legacy_signature_is_the_hex_hmac_of_the_body() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), RFC 4231-style known answer.
        let secret = Secret::new("key".into());
        let signatures = sign(
            &secret,
            "id",
            0,
            b"The quick brown fox jumps over the lazy dog",
        );
        assert_eq!(
            signatures.legacy,
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("super-secret-value-123".into());
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }
}
