//! Redaction before anything is stored (docs/interceptor.md): secret header values and query parameters become
//! `[REDACTED]`. Redaction never changes what is forwarded; it works on the copy that is recorded.

use std::collections::BTreeSet;

pub const REDACTED: &str = "[REDACTED]";
const DEFAULT_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];
const DEFAULT_QUERY_PARAMS: [&str; 4] = ["api_key", "token", "access_token", "key"];

/// Names compared case-insensitively: `Token` is as secret as `token`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redaction {
    headers: BTreeSet<String>,
    query_params: BTreeSet<String>,
}

impl Default for Redaction {
    fn default() -> Self {
        Redaction::with(&[], &[])
    }
}

impl Redaction {
    /// The defaults plus the names given.
    pub fn with(headers: &[String], query_params: &[String]) -> Redaction {
        let lower = |names: &mut dyn Iterator<Item = &str>| {
            names.map(str::to_ascii_lowercase).collect::<BTreeSet<_>>()
        };
        Redaction {
            headers: lower(
                &mut DEFAULT_HEADERS
                    .into_iter()
                    .chain(headers.iter().map(String::as_str)),
            ),
            query_params: lower(
                &mut DEFAULT_QUERY_PARAMS
                    .into_iter()
                    .chain(query_params.iter().map(String::as_str)),
            ),
        }
    }

    /// Whether a header of this name (any case) carries a secret, whose value is stored as [`REDACTED`].
    pub fn hides_header(&self, name: &str) -> bool {
        self.headers.contains(&name.to_ascii_lowercase())
    }

    /// The URL without credentials in its authority (`user:pass@`) and with secret query values replaced;
    /// everything else, including order, repeated keys and percent-encoding of other parameters, stays
    /// byte for byte.
    pub fn url(&self, url: &str) -> String {
        let url = without_userinfo(url);
        let url = url.as_str();
        let (before_fragment, fragment) = match url.split_once('#') {
            Some((head, fragment)) => (head, Some(fragment)),
            None => (url, None),
        };
        let Some((base, query)) = before_fragment.split_once('?') else {
            return url.to_string();
        };
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                let decoded: String = form_urlencoded::parse(name.as_bytes())
                    .map(|(key, _)| key.into_owned())
                    .collect();
                if !value.is_empty() && self.query_params.contains(&decoded.to_ascii_lowercase()) {
                    format!("{name}={REDACTED}")
                } else {
                    pair.to_string()
                }
            })
            .collect();
        let mut out = format!("{base}?{}", pairs.join("&"));
        if let Some(fragment) = fragment {
            out.push('#');
            out.push_str(fragment);
        }
        out
    }
}

/// `scheme://user:pass@host/…` → `scheme://host/…`: credentials never belong in a record, and a URL that
/// names them is still the same resource without them.
fn without_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |end| authority_start + end);
    match url[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}{}",
            &url[..authority_start],
            &url[authority_start + at + 1..]
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_authority_are_dropped() {
        let redaction = Redaction::default();
        let cases = [
            (
                "http://user:pass@api.example/x?q=1",
                "http://api.example/x?q=1",
            ),
            (
                "https://token@api.example:8443/",
                "https://api.example:8443/",
            ),
            ("https://a:b@c@api.example", "https://api.example"),
            (
                "https://api.example/x?email=a@b.example",
                "https://api.example/x?email=a@b.example",
            ),
            ("https://api.example/p@th", "https://api.example/p@th"),
        ];
        for (url, expected) in cases {
            assert_eq!(redaction.url(url), expected, "{url}");
        }
    }

    #[test]
    fn secret_headers_are_hidden_whatever_their_case() {
        let redaction = Redaction::with(&["x-upstream-token".into()], &[]);
        let hidden: Vec<bool> = [
            "Authorization",
            "accept",
            "Cookie",
            "X-API-Key",
            "X-Upstream-Token",
            "set-cookie",
        ]
        .iter()
        .map(|name| redaction.hides_header(name))
        .collect();
        assert_eq!(hidden, [true, false, true, true, true, true]);
    }

    #[test]
    fn secret_query_values_are_redacted_and_the_rest_kept_exactly() {
        let redaction = Redaction::with(&[], &["sig".into()]);
        let cases = [
            (
                "https://a.example/x?q=1&api_key=abc&q=2",
                "https://a.example/x?q=1&api_key=[REDACTED]&q=2",
            ),
            (
                "https://a.example/x?TOKEN=abc&name=J%C3%B6rg",
                "https://a.example/x?TOKEN=[REDACTED]&name=J%C3%B6rg",
            ),
            (
                "https://a.example/x?sig=zz&key=&a",
                "https://a.example/x?sig=[REDACTED]&key=&a",
            ),
            (
                "https://a.example/x?access%5Ftoken=abc",
                "https://a.example/x?access%5Ftoken=[REDACTED]",
            ),
            (
                "https://a.example/x?keys=1&monkey=2#key=3",
                "https://a.example/x?keys=1&monkey=2#key=3",
            ),
            ("https://a.example/x", "https://a.example/x"),
        ];
        for (url, expected) in cases {
            assert_eq!(redaction.url(url), expected, "{url}");
        }
    }
}
