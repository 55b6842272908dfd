//! The comparison rules of the verification modes (docs/evaluator.md "Modes"): canonical equality of JSON values
//! and the lenient, typed equality of `field_extraction`.

use super::decimal::Decimal;
use serde_json::Value;

/// Equality with object key order ignored, array order kept and numbers compared by exact decimal value.
/// Types must agree: `"101"` is not `101`.
pub fn canonical_eq(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => numbers_eq(a, b),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| canonical_eq(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(key, x)| b.get(key).is_some_and(|y| canonical_eq(x, y)))
        }
        _ => left == right,
    }
}

fn numbers_eq(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    match (Decimal::from_json(a), Decimal::from_json(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The decimal value of a JSON number, or of a string holding one (`" 89.5 "`); anything else is `None`.
pub fn numeric(value: &Value) -> Option<Decimal> {
    match value {
        Value::Number(number) => Decimal::from_json(number),
        Value::String(text) => Decimal::parse(text),
        _ => None,
    }
}

/// `field_extraction`: does the claimed value (usually text an LLM wrote) state the actual value?
pub fn claim_states(claimed: &Value, actual: &Value) -> bool {
    match actual {
        Value::String(actual_text) => match claimed {
            Value::String(text) => text.trim() == actual_text.trim(),
            Value::Number(number) => number.to_string() == actual_text.trim(),
            _ => false,
        },
        Value::Number(_) => match (numeric(claimed), numeric(actual)) {
            (Some(claimed), Some(actual)) => claimed == actual,
            _ => false,
        },
        Value::Bool(flag) => match claimed {
            Value::Bool(claimed) => claimed == flag,
            Value::String(text) => {
                let text = text.trim();
                if *flag {
                    text == "true" || text == "True"
                } else {
                    text == "false" || text == "False"
                }
            }
            _ => false,
        },
        Value::Null => match claimed {
            Value::Null => true,
            Value::String(text) => matches!(text.trim(), "null" | "None"),
            _ => false,
        },
        Value::Array(_) | Value::Object(_) => match claimed {
            Value::String(text) => serde_json::from_str::<Value>(text.trim())
                .is_ok_and(|parsed| canonical_eq(&parsed, actual)),
            other => canonical_eq(other, actual),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    #[test]
    fn canonical_equality_table() {
        let cases = [
            ("101", "101.0", true),
            ("101", "1.01e2", true),
            ("\"101\"", "101", false),
            ("9007199254740993", "9007199254740992", false),
            ("9007199254740993", "9007199254740993.0", true),
            ("0.1", "0.10", true),
            ("true", "true", true),
            ("true", "1", false),
            ("null", "null", true),
            ("null", "\"null\"", false),
            ("[1, 2]", "[1.0, 2e0]", true),
            ("[1, 2]", "[2, 1]", false),
            ("[[1], {\"a\": [2]}]", "[[1.0], {\"a\": [2.00]}]", true),
            ("{\"a\": 1, \"b\": 2}", "{\"b\": 2, \"a\": 1.0}", true),
            ("{\"a\": 1}", "{\"a\": 1, \"b\": null}", false),
            ("\"caf\u{e9}\"", "\"caf\u{e9}\"", true),
            ("\"cafe\u{301}\"", "\"caf\u{e9}\"", false),
            ("\" x\"", "\"x\"", false),
        ];
        for (left, right, expected) in cases {
            assert_eq!(
                canonical_eq(&json(left), &json(right)),
                expected,
                "{left} vs {right}"
            );
            assert_eq!(
                canonical_eq(&json(right), &json(left)),
                expected,
                "{right} vs {left}"
            );
        }
    }

    #[test]
    fn field_extraction_table() {
        // (claimed, actual, states it?)
        let cases = [
            ("\"shipped\"", "\"shipped\"", true),
            ("\"  shipped \"", "\"shipped\"", true),
            ("\"Shipped\"", "\"shipped\"", false),
            ("\"ship ped\"", "\"shipped\"", false),
            ("\"\u{1F4E6} box\"", "\" \u{1F4E6} box\"", true),
            ("\"101\"", "101", true),
            ("\"101.0\"", "101", true),
            ("\"1.01e2\"", "101", true),
            ("101", "101.0", true),
            ("\"0.1\"", "0.1", true),
            ("\" 89.5 \"", "89.5", true),
            ("\"89.50\"", "89.5", true),
            ("\"99.00\"", "89.5", false),
            ("\"9007199254740993\"", "9007199254740993", true),
            ("\"9007199254740992\"", "9007199254740993", false),
            ("\"1,000\"", "1000", false),
            ("\"$89.5\"", "89.5", false),
            ("true", "true", true),
            ("\"true\"", "true", true),
            ("\"True\"", "true", true),
            ("\"TRUE\"", "true", false),
            ("\"False\"", "false", true),
            ("\"true\"", "false", false),
            ("1", "true", false),
            ("null", "null", true),
            ("\"None\"", "null", true),
            ("\"null\"", "null", true),
            ("\"\"", "null", false),
            ("\"[\\\"A\\\",\\\"B\\\"]\"", "[\"A\", \"B\"]", true),
            ("[\"A\", \"B\"]", "[\"A\", \"B\"]", true),
            ("\"[\\\"B\\\",\\\"A\\\"]\"", "[\"A\", \"B\"]", false),
            (
                "\"{\\\"qty\\\": 2.0, \\\"sku\\\": \\\"A\\\"}\"",
                "{\"sku\": \"A\", \"qty\": 2}",
                true,
            ),
            ("\"not json\"", "{\"a\": 1}", false),
            ("101", "\"101\"", true),
            ("true", "\"true\"", false),
        ];
        for (claimed, actual, expected) in cases {
            assert_eq!(
                claim_states(&json(claimed), &json(actual)),
                expected,
                "claimed {claimed} vs actual {actual}"
            );
        }
    }

    #[test]
    fn numeric_reads_numbers_and_numeric_strings_only() {
        assert!(numeric(&json("\" 12.5 \"")).is_some());
        assert!(numeric(&json("12")).is_some());
        for not_numeric in ["true", "null", "\"twelve\"", "[1]", "{}"] {
            assert!(numeric(&json(not_numeric)).is_none(), "{not_numeric}");
        }
    }
}
