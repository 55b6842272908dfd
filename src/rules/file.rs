//! Loading `rules/*.toml`: every file of the directory in name order, merged. A mistake names its file and
//! entry, and the whole set is refused, so a typo can never silently widen trust.

use super::pattern::EndpointPattern;
use super::redact::Redaction;
use serde::Deserialize;
use std::path::Path;
use url::Url;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    trusted: Vec<TrustedEntry>,
    #[serde(default)]
    routes: Vec<RouteEntry>,
    #[serde(default)]
    actions: Vec<ActionEntry>,
    #[serde(default)]
    redact: RedactEntry,
    #[serde(default)]
    require_proxy_provenance: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedEntry {
    url: String,
    #[serde(default)]
    methods: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteEntry {
    prefix: String,
    upstream: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionEntry {
    name: String,
    #[serde(default)]
    method: Option<String>,
    url: String,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedactEntry {
    #[serde(default)]
    headers: Vec<String>,
    #[serde(default)]
    query_params: Vec<String>,
}

/// A reverse route: `http://proxy/PREFIX/rest` goes to `UPSTREAM/rest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub prefix: String,
    pub upstream: Url,
}

/// Tags records of `pattern` with the action `name`, for evidence lookup by run and action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRule {
    pub name: String,
    pub pattern: EndpointPattern,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    pub trusted: Vec<EndpointPattern>,
    pub routes: Vec<Route>,
    pub actions: Vec<ActionRule>,
    pub redaction: Redaction,
    /// Imported records do not count as evidence.
    pub require_proxy_provenance: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct InvalidRules {
    pub file: String,
    pub message: String,
}

impl Rules {
    /// Loads every `*.toml` file of `dir`, in name order.
    pub fn load_dir(dir: &Path) -> Result<Rules, InvalidRules> {
        let unreadable = |message: String| InvalidRules {
            file: dir.display().to_string(),
            message,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|error| unreadable(error.to_string()))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "toml")
            })
            .collect();
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|error| InvalidRules {
                file: path.display().to_string(),
                message: error.to_string(),
            })?;
            files.push((path.display().to_string(), text));
        }
        Rules::parse(&files)
    }

    /// Parses and merges `(file name, text)` pairs.
    pub fn parse(files: &[(String, String)]) -> Result<Rules, InvalidRules> {
        let mut rules = Rules::default();
        let (mut redact_headers, mut redact_params) = (Vec::new(), Vec::new());
        for (file, text) in files {
            let fail = |message: String| InvalidRules {
                file: file.clone(),
                message,
            };
            let parsed: RulesFile =
                toml::from_str(text).map_err(|error| fail(error.message().to_string()))?;
            for entry in parsed.trusted {
                rules.trusted.push(
                    EndpointPattern::parse(&entry.url, &entry.methods)
                        .map_err(|error| fail(error.to_string()))?,
                );
            }
            for entry in parsed.routes {
                rules.routes.push(route(&entry).map_err(fail)?);
            }
            for entry in parsed.actions {
                if entry.name.trim().is_empty() {
                    return Err(fail("an action needs a name".into()));
                }
                let methods: Vec<String> = entry.method.into_iter().collect();
                let pattern = EndpointPattern::parse(&entry.url, &methods)
                    .map_err(|error| fail(error.to_string()))?;
                rules.actions.push(ActionRule {
                    name: entry.name,
                    pattern,
                });
            }
            redact_headers.extend(parsed.redact.headers);
            redact_params.extend(parsed.redact.query_params);
            if let Some(required) = parsed.require_proxy_provenance {
                rules.require_proxy_provenance |= required;
            }
        }
        let mut prefixes: Vec<&str> = rules
            .routes
            .iter()
            .map(|route| route.prefix.as_str())
            .collect();
        prefixes.sort_unstable();
        if let Some(pair) = prefixes.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(InvalidRules {
                file: "rules".into(),
                message: format!("route prefix {} is defined twice", pair[0]),
            });
        }
        rules.redaction = Redaction::with(&redact_headers, &redact_params);
        Ok(rules)
    }

    /// The action a request to `url` is tagged with, if a rule names one (first match wins).
    pub fn action_for(&self, method: &str, url: &str) -> Option<&str> {
        self.actions
            .iter()
            .find(|rule| rule.pattern.matches(method, url))
            .map(|rule| rule.name.as_str())
    }

    /// The route whose prefix covers `path` on a segment boundary (the longest wins), and the rest of the path.
    pub fn route_for<'p>(&self, path: &'p str) -> Option<(&Route, &'p str)> {
        self.routes
            .iter()
            .filter_map(|route| {
                let rest = path.strip_prefix(route.prefix.as_str())?;
                (rest.is_empty() || rest.starts_with('/')).then_some((route, rest))
            })
            .max_by_key(|(route, _)| route.prefix.len())
    }
}

fn route(entry: &RouteEntry) -> Result<Route, String> {
    let prefix = entry.prefix.trim_end_matches('/');
    if !prefix.starts_with('/') || prefix.len() < 2 || prefix.contains(['?', '#']) {
        return Err(format!(
            "route prefix {:?} must look like /name",
            entry.prefix
        ));
    }
    let upstream = Url::parse(&entry.upstream)
        .map_err(|error| format!("route upstream {:?}: {error}", entry.upstream))?;
    if !matches!(upstream.scheme(), "http" | "https") || upstream.host_str().is_none() {
        return Err(format!(
            "route upstream {:?} must be an http(s) URL",
            entry.upstream
        ));
    }
    if upstream.query().is_some()
        || upstream.fragment().is_some()
        || !upstream.username().is_empty()
    {
        return Err(format!(
            "route upstream {:?} must not carry a query, fragment or credentials",
            entry.upstream
        ));
    }
    Ok(Route {
        prefix: prefix.to_string(),
        upstream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Rules, InvalidRules> {
        Rules::parse(&[("rules/test.toml".to_string(), text.to_string())])
    }

    const EXAMPLE: &str = r#"
        require_proxy_provenance = true

        [[trusted]]
        url = "https://api.example.com/v1/orders/{id}"
        methods = ["GET"]

        [[trusted]]
        url = "https://*.payments.example/{rest:path}"

        [[routes]]
        prefix = "/pokeapi"
        upstream = "https://pokeapi.co"

        [[routes]]
        prefix = "/pokeapi/v2"
        upstream = "https://v2.pokeapi.co/api"

        [[actions]]
        name = "get_order"
        method = "GET"
        url = "https://api.example.com/v1/orders/{id}"

        [redact]
        headers = ["x-upstream-token"]
        query_params = ["sig"]
    "#;

    #[test]
    fn a_full_rules_file_loads_and_answers() {
        let rules = parse(EXAMPLE).expect("rules");
        assert!(rules.require_proxy_provenance);
        let trust = crate::rules::TrustList::new(&rules, &[]);
        assert!(trust.covers("GET", "https://api.example.com/v1/orders/7"));
        assert!(!trust.covers("POST", "https://api.example.com/v1/orders/7"));
        assert!(trust.covers("POST", "https://eu.payments.example/charges/1"));
        assert_eq!(
            rules.action_for("GET", "https://api.example.com/v1/orders/7"),
            Some("get_order")
        );
        assert_eq!(
            rules.action_for("GET", "https://api.example.com/v1/orders"),
            None
        );
        let (route, rest) = rules
            .route_for("/pokeapi/api/v2/pokemon/ditto")
            .expect("route");
        assert_eq!(
            (route.upstream.as_str(), rest),
            ("https://pokeapi.co/", "/api/v2/pokemon/ditto")
        );
        let (route, rest) = rules
            .route_for("/pokeapi/v2/pokemon")
            .expect("longest prefix");
        assert_eq!(
            (route.upstream.as_str(), rest),
            ("https://v2.pokeapi.co/api", "/pokemon")
        );
        assert!(
            rules.route_for("/pokeapix/a").is_none(),
            "prefix on a segment boundary"
        );
        assert_eq!(
            rules.redaction.url("https://x.example/?sig=1"),
            "https://x.example/?sig=[REDACTED]"
        );
    }

    #[test]
    fn mistakes_name_their_file_and_refuse_the_set() {
        for (text, fragment) in [
            ("[[trusted]]\nurl = \"ftp://x/y\"", "scheme"),
            ("[[trusted]]\nurls = \"https://x/y\"", "unknown field"),
            ("[[routes]]\nprefix = \"pokeapi\"\nupstream = \"https://pokeapi.co\"", "must look like"),
            ("[[routes]]\nprefix = \"/p\"\nupstream = \"https://u:p@pokeapi.co\"", "credentials"),
            ("[[routes]]\nprefix = \"/p\"\nupstream = \"https://a.co\"\n[[routes]]\nprefix = \"/p/\"\nupstream = \"https://b.co\"", "twice"),
            ("[[actions]]\nname = \"\"\nurl = \"https://a.co/x\"", "needs a name"),
            ("trusted = 5", "invalid type"),
            ("[[trusted", "expected"),
        ] {
            let error = parse(text).expect_err(text);
            assert!(error.to_string().contains(fragment), "{text}: {error}");
            assert!(error.file == "rules" || error.file == "rules/test.toml");
        }
    }

    #[test]
    fn the_shipped_example_is_valid_and_trusts_nothing() {
        let rules = Rules::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
            .expect("shipped rules load");
        assert!(
            rules.trusted.is_empty(),
            "the example only documents; it must not restrict a fresh server"
        );
        assert_eq!(rules, Rules::default());
        // Its example lines are commented out with "#> "; enabled, they must form a valid rules file.
        let documented = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/example.toml"),
        )
        .expect("example");
        let enabled: String = documented
            .lines()
            .filter_map(|line| line.strip_prefix("#> "))
            .collect::<Vec<_>>()
            .join("\n");
        let example = parse(&enabled).expect("the documented example is valid");
        assert!(
            !example.trusted.is_empty()
                && !example.routes.is_empty()
                && !example.actions.is_empty()
        );
    }
}
