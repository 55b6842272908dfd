//! RFC 9535 JSONPath, owned here because a claim's path is hostile input: its length and nesting are
//! limited before and while it is parsed (the parser neither recurses deeply nor backtracks), and queries run
//! under the request's budget with regexes compiled once. The vendored compliance suite (703 cases) is
//! asserted in `tests/integration/jsonpath_cts.rs`.

mod iregexp;
mod parse;
mod query;
mod syntax;

pub use parse::ParseError;
pub use query::Evaluator;

use super::budget::{Exhausted, Limits};
use serde_json::Value;

/// A parsed query, ready to run many times.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonPath {
    query: syntax::Query,
}

impl JsonPath {
    /// Parses `text` within `limits.path_bytes` and `limits.path_depth`.
    pub fn parse(text: &str, limits: &Limits) -> Result<JsonPath, ParseError> {
        if text.len() > limits.path_bytes {
            return Err(ParseError::TooComplex(format!(
                "the path is longer than {} bytes",
                limits.path_bytes
            )));
        }
        parse::parse(text, limits.path_depth).map(|query| JsonPath { query })
    }

    /// The nodes this path selects in `document`, in document order.
    pub fn select<'v>(
        &self,
        document: &'v Value,
        evaluator: &mut Evaluator,
    ) -> Result<Vec<&'v Value>, Exhausted> {
        evaluator.select(&self.query, document, document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::budget::Budget;
    use serde_json::json;

    fn select(path: &str, document: &Value) -> Result<Vec<Value>, Exhausted> {
        let path = JsonPath::parse(path, &Limits::default()).expect("valid path");
        let mut evaluator = Evaluator::new(Budget::new(Limits::default()));
        path.select(document, &mut evaluator)
            .map(|nodes| nodes.into_iter().cloned().collect())
    }

    #[test]
    fn deep_nesting_is_refused_before_it_recurses() {
        let limits = Limits::default();
        let parens = format!("$[?{}@.a{}]", "(".repeat(100_000), ")".repeat(100_000));
        let filters = format!("$[?{}]", "@[?".repeat(100_000));
        let functions = format!("$[?{}@{}]", "length(".repeat(100_000), ")".repeat(100_000));
        for text in [&parens[..4000], &filters[..4000], &functions[..4000]] {
            assert!(
                matches!(
                    JsonPath::parse(text, &limits),
                    Err(ParseError::TooComplex(_))
                ),
                "{}",
                &text[..20]
            );
        }
        assert!(matches!(
            JsonPath::parse(&parens, &limits),
            Err(ParseError::TooComplex(_))
        ));
    }

    #[test]
    fn nesting_within_the_limit_parses() {
        let limits = Limits::default();
        let depth = limits.path_depth - 1;
        let parens = format!("$[?{}@.a{}]", "(".repeat(depth), ")".repeat(depth));
        assert!(JsonPath::parse(&parens, &limits).is_ok());
        let filters = format!("$[?{}@{}]", "@[?".repeat(depth), "]".repeat(depth));
        assert!(JsonPath::parse(&filters, &limits).is_ok());
    }

    #[test]
    fn descendant_explosion_runs_out_of_steps() {
        // 1 KB of nesting: `..*..*..*` would select millions of nodes.
        let mut document = json!(1);
        for _ in 0..100 {
            document = json!([document, {"a": 1}]);
        }
        let path = JsonPath::parse("$..*..*..*..*", &Limits::default()).expect("valid path");
        let mut evaluator = Evaluator::new(Budget::new(Limits {
            steps: 100_000,
            ..Limits::default()
        }));
        assert_eq!(
            path.select(&document, &mut evaluator),
            Err(Exhausted::Steps(100_000))
        );
    }

    #[test]
    fn filters_compare_numbers_by_exact_value() {
        let document = json!([{"n": 1}, {"n": 1.0}, {"n": 9007199254740993_u64}, {"n": "1"}]);
        assert_eq!(select("$[?@.n == 1]", &document).map(|n| n.len()), Ok(2));
        assert_eq!(
            select("$[?@.n == 9007199254740993]", &document).map(|n| n.len()),
            Ok(1)
        );
        assert_eq!(
            select("$[?@.n == 9007199254740992]", &document).map(|n| n.len()),
            Ok(0)
        );
    }

    #[test]
    fn dot_excludes_line_breaks_and_search_finds_substrings() {
        let document = json!(["a\nb", "a-b", "xa-bx"]);
        assert_eq!(
            select("$[?match(@, 'a.b')]", &document),
            Ok(vec![json!("a-b")])
        );
        assert_eq!(
            select("$[?search(@, 'a.b')]", &document),
            Ok(vec![json!("a-b"), json!("xa-bx")])
        );
    }
}
