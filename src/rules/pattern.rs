//! Endpoint patterns: method + URL templates for trusted endpoints (docs/evaluator.md "Gate before comparison":
//! a record counts as evidence only if its own URL and method match one) and for action rules. Matching is
//! on the parsed URL — scheme and port exact
//! (default ports normalised), host exact or `*.suffix` on a dot boundary, path segment by segment with
//! `{name}` for one segment and `{rest:path}` for a subtree — so that `api.example.com.evil.net`,
//! `api.example.com@evil.net` and `/v10` never pass for `api.example.com/v1`.

use url::Url;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Host {
    Exact(String),
    /// `*.example.com`: any host ending in `.example.com`, but not `example.com` itself.
    Subdomain(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: exactly one non-empty segment.
    One,
    /// `{name:path}`: one or more segments, only last.
    Rest,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointPattern {
    template: String,
    scheme: String,
    host: Host,
    port: u16,
    path: Vec<Segment>,
    /// Upper-case methods; empty means any.
    methods: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid trusted endpoint {template:?}: {reason}")]
pub struct InvalidTemplate {
    pub template: String,
    pub reason: String,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl EndpointPattern {
    /// Parses `https://host[:port]/path/{id}/{rest:path}` and an optional method list.
    pub fn parse(template: &str, methods: &[String]) -> Result<EndpointPattern, InvalidTemplate> {
        let fail = |reason: &str| InvalidTemplate {
            template: template.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = template
            .split_once("://")
            .ok_or_else(|| fail("expected scheme://host/path"))?;
        let scheme = scheme.to_ascii_lowercase();
        let port_default =
            default_port(&scheme).ok_or_else(|| fail("scheme must be http or https"))?;
        if rest.contains(['?', '#']) {
            return Err(fail("a template has no query or fragment"));
        }
        if rest.contains(|c: char| c == ' ' || c.is_control()) {
            return Err(fail("a template has no spaces or control characters"));
        }
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(fail("a template has no user information"));
        }
        let (host, port) = split_port(authority).ok_or_else(|| fail("invalid port"))?;
        let host = host.to_ascii_lowercase();
        if host.is_empty() {
            return Err(fail("missing host"));
        }
        let host = match host.strip_prefix("*.") {
            Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => {
                Host::Subdomain(normalized_host(suffix).ok_or_else(|| fail("invalid host"))?)
            }
            Some(_) => return Err(fail("invalid wildcard host")),
            None if host.contains('*') => {
                return Err(fail(
                    "a wildcard is only allowed as the first label (*.example.com)",
                ))
            }
            None => Host::Exact(normalized_host(&host).ok_or_else(|| fail("invalid host"))?),
        };
        let raw_segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        let mut segments = Vec::with_capacity(raw_segments.len());
        for (index, raw) in raw_segments.iter().enumerate() {
            let segment = match raw
                .strip_prefix('{')
                .and_then(|inner| inner.strip_suffix('}'))
            {
                Some(inner) if inner.ends_with(":path") => {
                    if index + 1 != raw_segments.len() {
                        return Err(fail("{name:path} must be the last segment"));
                    }
                    Segment::Rest
                }
                Some(inner) if !inner.is_empty() && !inner.contains(['{', '}', ':']) => {
                    Segment::One
                }
                Some(_) => return Err(fail("invalid {placeholder}")),
                None if raw.contains(['{', '}']) => {
                    return Err(fail("a placeholder must be a whole segment"))
                }
                None => Segment::Literal(raw.to_string()),
            };
            segments.push(segment);
        }
        let methods = methods
            .iter()
            .map(|method| method.trim().to_ascii_uppercase())
            .collect();
        Ok(EndpointPattern {
            template: template.to_string(),
            scheme,
            host,
            port: port.unwrap_or(port_default),
            path: segments,
            methods,
        })
    }

    pub fn template(&self) -> &str {
        &self.template
    }

    /// Whether a request to `url` with `method` is covered. Unparsable URLs and URLs with user information
    /// are never trusted.
    pub fn matches(&self, method: &str, url: &str) -> bool {
        Url::parse(url).is_ok_and(|url| self.matches_url(method, &url))
    }

    /// [`matches`](Self::matches) for a URL already parsed, so a list of patterns parses it once.
    pub fn matches_url(&self, method: &str, url: &Url) -> bool {
        if !url.username().is_empty() || url.password().is_some() {
            return false;
        }
        if url.scheme() != self.scheme || url.port_or_known_default() != Some(self.port) {
            return false;
        }
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let host_ok = match &self.host {
            Host::Exact(expected) => host == *expected,
            Host::Subdomain(suffix) => {
                host.len() > suffix.len() + 1
                    && host.ends_with(suffix.as_str())
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
        };
        if !host_ok
            || !(self.methods.is_empty()
                || self
                    .methods
                    .iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(method)))
        {
            return false;
        }
        let segments: Vec<&str> = url
            .path_segments()
            .map(Iterator::collect)
            .unwrap_or_default();
        path_matches(&self.path, &segments)
    }
}

/// A host as the URL parser writes it (IDNA to punycode, IPv4 in dotted form, IPv6 in brackets), so a
/// template compares with `Url::host_str` like for like; `None` when it is not a valid host.
/// A host as URLs carry it: IDNA-encoded names of letters, digits, `-`, `_` and dots (the URL standard
/// would also let `{x` through, which no real host is), or an IP literal.
fn normalized_host(host: &str) -> Option<String> {
    match url::Host::parse(host).ok()? {
        url::Host::Domain(domain) => {
            let letters = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
            domain
                .chars()
                .all(letters)
                .then(|| domain.to_ascii_lowercase())
        }
        url::Host::Ipv4(address) => Some(address.to_string()),
        url::Host::Ipv6(address) => Some(format!("[{address}]")),
    }
}

fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    // `[v6]:port`, `[v6]`, `host:port`, `host`
    if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, rest) = authority.split_at(close + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Some((host, Some(port.parse().ok()?))),
            None if rest.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((authority, None)),
    }
}

fn path_matches(template: &[Segment], segments: &[&str]) -> bool {
    match (template.split_first(), segments.split_first()) {
        (None, None) => true,
        (Some((Segment::Rest, _)), _) => {
            !segments.is_empty() && segments.iter().all(|segment| !segment.is_empty())
        }
        (Some((Segment::One, rest)), Some((segment, more))) => {
            !segment.is_empty() && path_matches(rest, more)
        }
        (Some((Segment::Literal(literal), rest)), Some((segment, more))) => {
            literal == segment && path_matches(rest, more)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(template: &str) -> EndpointPattern {
        EndpointPattern::parse(template, &[]).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn bypass_attempts_are_untrusted() {
        let orders = endpoint("https://api.example.com/v1/orders/{id}");
        let subtree = endpoint("https://api.example.com/v1/{rest:path}");
        let cases = [
            (
                &orders,
                "https://api.example.com.evil.net/v1/orders/7",
                "host suffix",
            ),
            (
                &orders,
                "https://evil.net/api.example.com/v1/orders/7",
                "host in path",
            ),
            (
                &orders,
                "https://api.example.com@evil.net/v1/orders/7",
                "userinfo host",
            ),
            (
                &orders,
                "https://user:pw@api.example.com/v1/orders/7",
                "userinfo on the right host",
            ),
            (
                &endpoint("https://api.example.com/v1/orders/%"),
                "https://api.example.com/v1/orders/7",
                "LIKE % is literal",
            ),
            (
                &endpoint("https://api.example.com/v1/order_"),
                "https://api.example.com/v1/orders",
                "LIKE _ is literal",
            ),
            (
                &subtree,
                "https://api.example.com/v10/secret",
                "/v1 vs /v10",
            ),
            (
                &endpoint("https://api.example.com/v1"),
                "https://api.example.com/v10",
                "/v1 vs /v10, exact",
            ),
            (&orders, "http://api.example.com/v1/orders/7", "scheme"),
            (&orders, "https://api.example.com:8443/v1/orders/7", "port"),
            (&orders, "https://api.example.com/V1/orders/7", "path case"),
            (&orders, "https://api.example.com/v1/Orders/7", "path case"),
            (
                &orders,
                "https://api.example.com/v1/orders/7/refund",
                "longer path",
            ),
            (
                &orders,
                "https://api.example.com/v1/orders/",
                "empty parameter",
            ),
            (
                &orders,
                "https://api.example.com/v1/orders/7/",
                "trailing slash",
            ),
            (
                &orders,
                "https://api.example.com/v1/orders/7/../../admin",
                "dot segments resolve away",
            ),
            (
                &orders,
                "https://api.example.com/v1/orders/%2e%2e/%2e%2e/admin",
                "encoded dot segments",
            ),
            (&orders, "not a url", "garbage"),
            (
                &subtree,
                "https://api.example.com/v1",
                "subtree needs a segment",
            ),
            (
                &subtree,
                "https://api.example.com/v1//x",
                "empty segment in subtree",
            ),
            (
                &endpoint("https://*.example.com/x"),
                "https://example.com/x",
                "wildcard needs a subdomain",
            ),
            (
                &endpoint("https://*.example.com/x"),
                "https://evilexample.com/x",
                "wildcard on a dot boundary",
            ),
            (
                &endpoint("https://*.example.com/x"),
                "https://api.example.com.evil.net/x",
                "wildcard suffix",
            ),
        ];
        for (trusted, url, why) in cases {
            assert!(
                !trusted.matches("GET", url),
                "{why}: {url} must not match {}",
                trusted.template()
            );
        }
    }

    #[test]
    fn templates_and_wildcards_are_trusted() {
        let cases = [
            (
                "https://api.example.com/v1/orders/{id}",
                "https://api.example.com/v1/orders/7",
            ),
            (
                "https://api.example.com/v1/orders/{id}",
                "https://API.Example.COM/v1/orders/7",
            ),
            (
                "https://api.example.com/v1/orders/{id}",
                "https://api.example.com:443/v1/orders/7?expand=items&expand=x",
            ),
            (
                "https://api.example.com:443/v1/orders/{id}",
                "https://api.example.com/v1/orders/abc-123",
            ),
            (
                "https://api.example.com/v1/{rest:path}",
                "https://api.example.com/v1/a",
            ),
            (
                "https://api.example.com/v1/{rest:path}",
                "https://api.example.com/v1/a/b/c",
            ),
            ("https://*.example.com/x", "https://api.example.com/x"),
            ("https://*.example.com/x", "https://eu.api.example.com/x"),
            (
                "http://127.0.0.1:8080/health",
                "http://127.0.0.1:8080/health",
            ),
            ("http://[::1]:9000/a/{id}", "http://[::1]:9000/a/1"),
            ("https://pokeapi.co", "https://pokeapi.co/"),
            (
                "https://bücher.example/katalog",
                "https://xn--bcher-kva.example/katalog",
            ),
            (
                "https://BÜCHER.example/katalog",
                "https://bücher.example/katalog",
            ),
            ("http://127.1/x", "http://127.0.0.1/x"),
        ];
        for (template, url) in cases {
            assert!(
                endpoint(template).matches("GET", url),
                "{url} must match {template}"
            );
        }
    }

    #[test]
    fn method_sets_restrict_matches() {
        let read_only = EndpointPattern::parse(
            "https://api.example.com/v1/orders/{id}",
            &["get".into(), "HEAD".into()],
        )
        .expect("template");
        assert!(read_only.matches("GET", "https://api.example.com/v1/orders/7"));
        assert!(read_only.matches("head", "https://api.example.com/v1/orders/7"));
        assert!(!read_only.matches("POST", "https://api.example.com/v1/orders/7"));
        assert!(endpoint("https://api.example.com/v1/orders/{id}")
            .matches("DELETE", "https://api.example.com/v1/orders/7"));
    }

    #[test]
    fn malformed_templates_are_refused() {
        for template in [
            "api.example.com/v1",
            "ftp://api.example.com/x",
            "https:///x",
            "https://user@api.example.com/x",
            "https://api.example.com/x?y=1",
            "https://api.example.com:99999/x",
            "https://api.*.com/x",
            "https://*./x",
            "https://api.example.com/v1/{rest:path}/more",
            "https://api.example.com/v1/{}",
            "https://api.example.com/v1/pre{id}",
            "https://xn--a00.a/x",
            "https://exa mple.com/x",
            "https://{x",
            "https://{x}/y",
            "https://a}b.example/x",
        ] {
            assert!(
                EndpointPattern::parse(template, &[]).is_err(),
                "{template} should be refused"
            );
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn matching_respects_host_and_segment_boundaries(
                host in "[a-z][a-z0-9]{0,10}(\\.[a-z][a-z0-9]{0,6}){1,3}",
                extra in "[a-z0-9-]{1,8}",
                segment in "[A-Za-z0-9_~-]{1,10}",
                more in "[A-Za-z0-9_~-]{1,5}",
            ) {
                let exact = endpoint(&format!("https://{host}/{segment}"));
                prop_assert!(exact.matches("GET", &format!("https://{host}/{segment}")), "itself");
                prop_assert!(!exact.matches("GET", &format!("https://{host}.{extra}/{segment}")), "host suffix");
                prop_assert!(!exact.matches("GET", &format!("https://{extra}{host}/{segment}")), "host prefix");
                prop_assert!(!exact.matches("GET", &format!("https://{host}@{extra}.com/{segment}")), "userinfo");
                prop_assert!(!exact.matches("GET", &format!("https://{host}/{segment}{more}")), "segment prefix");
                prop_assert!(!exact.matches("GET", &format!("https://{host}/{segment}/{more}")), "deeper path");
                let wildcard = endpoint(&format!("https://*.{host}/{segment}"));
                prop_assert!(wildcard.matches("GET", &format!("https://{extra}.{host}/{segment}")), "subdomain");
                prop_assert!(!wildcard.matches("GET", &format!("https://{extra}{host}/{segment}")), "no dot boundary");
                prop_assert!(!wildcard.matches("GET", &format!("https://{host}/{segment}")), "bare suffix");
            }
        }
    }
}
