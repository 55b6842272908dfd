//! Which request and response headers cross the proxy, and which are ours. Pure: the exchange phases call
//! these on hyper's header maps.

use crate::records::Header;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};

pub const RUN: &str = "x-handoffrail-run";
pub const AGENT: &str = "x-handoffrail-agent";
pub const ACTION: &str = "x-handoffrail-action";
/// On every proxied response: the id of the record of the exchange.
pub const RECORD: &str = "x-handoffrail-record";

/// Connection-scoped headers (RFC 9110 §7.6.1): they describe one hop and are never forwarded.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The control headers an agent sends to tag its records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags {
    pub run_id: Option<String>,
    pub agent_id: Option<String>,
    pub action: Option<String>,
}

fn text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(String::from)
}

pub fn tags(headers: &HeaderMap) -> Tags {
    Tags {
        run_id: text(headers, RUN),
        agent_id: text(headers, AGENT),
        action: text(headers, ACTION),
    }
}

/// Names the `Connection` header lists: hop-by-hop for this message only.
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect()
}

/// Drops `dropped` and `listed` headers, keeping the rest in the order they came (`HeaderMap::remove` would
/// reorder them); most messages carry none, and then nothing is copied.
fn drop_headers(headers: &mut HeaderMap, dropped: &[&str], listed: &[HeaderName]) {
    let doomed = |name: &HeaderName| dropped.contains(&name.as_str()) || listed.contains(name);
    if !headers.keys().any(doomed) {
        return;
    }
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers.iter() {
        if !doomed(name) {
            kept.append(name.clone(), value.clone());
        }
    }
    *headers = kept;
}

/// Removes hop-by-hop headers (including those the `Connection` header names) and our control headers;
/// everything else is forwarded as the client sent it, in its order.
pub fn strip_for_upstream(headers: &mut HeaderMap) {
    let listed = connection_listed(headers);
    drop_headers(headers, &HOP_BY_HOP, &listed);
    drop_headers(headers, &[RUN, AGENT, ACTION], &[]);
}

/// Removes hop-by-hop headers from an upstream response before it goes back to the client.
pub fn strip_for_client(headers: &mut HeaderMap) {
    let listed = connection_listed(headers);
    drop_headers(headers, &HOP_BY_HOP, &listed);
}

/// Headers as a record keeps them: in order, repeated names repeated, values as text (invalid UTF-8 lossily).
pub fn recorded(headers: &HeaderMap) -> Vec<Header> {
    headers
        .iter()
        .map(|(name, value)| Header {
            name: name.as_str().to_string(),
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
        })
        .collect()
}

/// The agent id and API key of `Proxy-Authorization: Basic base64(agent:key)`.
pub fn proxy_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers
        .get(hyper::header::PROXY_AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (agent, key) = decoded.split_once(':')?;
    Some((agent.to_string(), key.to_string()))
}

pub fn record_id_value(id: uuid::Uuid) -> HeaderValue {
    // A hyphenated UUID is always a valid header value.
    HeaderValue::from_str(&id.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// `Host` for a request to `url`: its host and any port that is not the scheme's default.
pub fn host_of(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// Whether two `host[:port]` authorities name the same origin: hosts compared without case, a missing port
/// read as `default_port`, IPv6 literals in brackets.
pub fn same_authority(left: &str, right: &str, default_port: u16) -> bool {
    fn split(authority: &str, default_port: u16) -> Option<(String, u16)> {
        let authority = authority.trim();
        let (host, port) = match authority.rfind(':') {
            Some(colon) if !authority[colon..].contains(']') => {
                (&authority[..colon], authority[colon + 1..].parse().ok()?)
            }
            _ => (authority, default_port),
        };
        (!host.is_empty()).then(|| (host.to_ascii_lowercase(), port))
    }
    match (split(left, default_port), split(right, default_port)) {
        (Some(left), Some(right)) => left == right,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_compare_as_origins() {
        let cases = [
            ("api.example.com", "api.example.com:443", true),
            ("API.example.com:443", "api.example.com", true),
            ("api.example.com:8443", "api.example.com:443", false),
            ("attacker-vhost.example", "api.example.com:443", false),
            ("[::1]:443", "[::1]", true),
            ("[::1]:8443", "[::1]:443", false),
            ("api.example.com:x", "api.example.com", false),
            ("", "api.example.com", false),
        ];
        for (left, right, same) in cases {
            assert_eq!(same_authority(left, right, 443), same, "{left} vs {right}");
        }
    }

    #[test]
    fn host_is_the_urls_authority_without_credentials_or_default_port() {
        let cases = [
            ("http://user:pass@Api.Example.com:80/x", "api.example.com"),
            ("http://127.0.0.1:8080/x", "127.0.0.1:8080"),
            ("https://[::1]:8443/", "[::1]:8443"),
        ];
        for (url, host) in cases {
            assert_eq!(host_of(&url::Url::parse(url).expect("url")), host, "{url}");
        }
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        headers
    }

    #[test]
    fn hop_by_hop_and_control_headers_stay_behind() {
        let mut headers = map(&[
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "1"),
            ("Proxy-Authorization", "Basic abc"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("X-HandoffRail-Run", "run-1"),
            ("X-HandoffRail-Action", "get_order"),
            ("Authorization", "Bearer upstream-secret"),
            ("Cookie", "a=1"),
            ("X-API-Key", "upstream-key"),
            ("Accept", "application/json"),
            ("Accept", "text/plain"),
        ]);
        strip_for_upstream(&mut headers);
        let left: Vec<(String, String)> = recorded(&headers)
            .into_iter()
            .map(|header| (header.name, header.value))
            .collect();
        let expect = |name: &str, value: &str| (name.to_string(), value.to_string());
        assert_eq!(
            left,
            [
                expect("authorization", "Bearer upstream-secret"),
                expect("cookie", "a=1"),
                expect("x-api-key", "upstream-key"),
                expect("accept", "application/json"),
                expect("accept", "text/plain"),
            ],
            "the upstream's own credentials are forwarded; repeated headers stay repeated"
        );
    }

    #[test]
    fn tags_and_credentials_are_read_from_the_request() {
        let headers = map(&[
            ("X-HandoffRail-Run", " run-1 "),
            ("X-HandoffRail-Agent", ""),
            ("X-HandoffRail-Action", "get_order"),
            (
                "Proxy-Authorization",
                &format!("basic {}", STANDARD.encode("sales-01:hr_key:with:colons")),
            ),
        ]);
        assert_eq!(
            tags(&headers),
            Tags {
                run_id: Some("run-1".into()),
                agent_id: None,
                action: Some("get_order".into())
            }
        );
        assert_eq!(
            proxy_credentials(&headers),
            Some(("sales-01".into(), "hr_key:with:colons".into()))
        );
        for bad in ["Bearer x", "Basic !!!", "Basic bm9jb2xvbg=="] {
            assert_eq!(
                proxy_credentials(&map(&[("Proxy-Authorization", bad)])),
                None,
                "{bad}"
            );
        }
    }
}
