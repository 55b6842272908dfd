//! Where a request goes: the upstream URL for an absolute-form request (forward proxy), a request inside a
//! CONNECT tunnel, or an origin-form request under a reverse route from the rules. Pure and table-tested.

use crate::rules::Route;
use hyper::Uri;
use url::Url;

/// How the request reached the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leg {
    /// On the proxy port, in plain HTTP.
    Plain,
    /// Inside a CONNECT tunnel to this `host:port`, after TLS termination.
    Tunnel(String),
}

#[derive(Clone, Debug)]
pub struct Destination {
    /// What is sent upstream, exactly as the client wrote path and query (no normalisation).
    pub uri: Uri,
    /// The same, parsed: what is recorded and matched against trusted endpoints.
    pub url: Url,
    /// The reverse route the request came through, if any.
    pub route: Option<String>,
}

impl Destination {
    pub fn url(&self) -> &Url {
        &self.url
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoDestination {
    #[error(
        "no route for {0}: send absolute-form requests (HTTP_PROXY) or use a [[routes]] prefix"
    )]
    NoRoute(String),
    #[error("unsupported URL {0}: only http and https are proxied")]
    Unsupported(String),
}

pub fn destination(uri: &Uri, leg: &Leg, routes: &[Route]) -> Result<Destination, NoDestination> {
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    if let Leg::Tunnel(authority) = leg {
        let authority = authority.strip_suffix(":443").unwrap_or(authority);
        return target(format!("https://{authority}{path_and_query}"), None);
    }
    if uri.scheme().is_some() {
        return target(uri.to_string(), None);
    }
    let path = uri.path();
    let route = routes
        .iter()
        .filter(|route| under(path, &route.prefix))
        .max_by_key(|route| route.prefix.len())
        .ok_or_else(|| NoDestination::NoRoute(path.to_string()))?;
    let rest = &path_and_query[route.prefix.trim_end_matches('/').len()..];
    let base = route.upstream.as_str().trim_end_matches('/');
    let rest = if rest.is_empty() || rest.starts_with('?') {
        format!("/{rest}")
    } else {
        rest.to_string()
    };
    target(format!("{base}{rest}"), Some(route.prefix.clone()))
}

fn target(text: String, route: Option<String>) -> Result<Destination, NoDestination> {
    let url = parse(&text)?;
    let uri = text
        .parse::<Uri>()
        .map_err(|_| NoDestination::Unsupported(text.clone()))?;
    Ok(Destination { uri, url, route })
}

/// `path` is `prefix` or below it, on a segment boundary: `/pokeapi` covers `/pokeapi/x`, not `/pokeapix`.
fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.is_empty(),
        None => false,
    }
}

fn parse(text: &str) -> Result<Url, NoDestination> {
    let url = Url::parse(text).map_err(|_| NoDestination::Unsupported(text.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(NoDestination::Unsupported(text.to_string()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Vec<Route> {
        [
            ("/pokeapi", "https://pokeapi.co"),
            ("/pokeapi/v3", "https://v3.pokeapi.example/base/"),
            ("/orders/", "http://127.0.0.1:9000/api"),
        ]
        .into_iter()
        .map(|(prefix, upstream)| Route {
            prefix: prefix.into(),
            upstream: Url::parse(upstream).expect("url"),
        })
        .collect()
    }

    #[test]
    fn requests_find_their_upstream() {
        let plain = Leg::Plain;
        let tunnel = Leg::Tunnel("api.example.com:443".into());
        let cases: [(&str, &Leg, &str); 9] = [
            (
                "http://api.example.com/v1/x?a=1&a=2",
                &plain,
                "http://api.example.com/v1/x?a=1&a=2",
            ),
            (
                "http://api.example.com:8080",
                &plain,
                "http://api.example.com:8080/",
            ),
            (
                "/v1/orders/7?expand=a&expand=b",
                &tunnel,
                "https://api.example.com/v1/orders/7?expand=a&expand=b",
            ),
            (
                "/pokeapi/api/v2/pokemon/ditto",
                &plain,
                "https://pokeapi.co/api/v2/pokemon/ditto",
            ),
            ("/pokeapi", &plain, "https://pokeapi.co/"),
            ("/pokeapi?x=1", &plain, "https://pokeapi.co/?x=1"),
            (
                "/pokeapi/v3/items",
                &plain,
                "https://v3.pokeapi.example/base/items",
            ),
            ("/orders/7", &plain, "http://127.0.0.1:9000/api/7"),
            (
                "/orders/%7Bid%7D?q=%20",
                &plain,
                "http://127.0.0.1:9000/api/%7Bid%7D?q=%20",
            ),
        ];
        for (uri, leg, expected) in cases {
            let uri: Uri = uri.parse().expect("uri");
            let found = destination(&uri, leg, &routes()).expect(expected);
            assert_eq!(found.uri.to_string(), expected, "{uri}: sent as written");
            assert_eq!(found.url().as_str(), expected, "{uri}");
        }
    }

    #[test]
    fn unrouted_and_unsupported_requests_are_refused() {
        for uri in ["/pokeapix/1", "/", "/other"] {
            let uri: Uri = uri.parse().expect("uri");
            assert!(
                matches!(
                    destination(&uri, &Leg::Plain, &routes()),
                    Err(NoDestination::NoRoute(_))
                ),
                "{uri}"
            );
        }
        let ftp: Uri = "ftp://files.example/x".parse().expect("uri");
        assert!(matches!(
            destination(&ftp, &Leg::Plain, &routes()),
            Err(NoDestination::Unsupported(_))
        ));
    }
}
