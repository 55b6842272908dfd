//! Input both databases store alike, checked at the edge so that SQLite and PostgreSQL answer the same
//! request the same way: no NUL characters in text (PostgreSQL cannot store U+0000 in `text` or `jsonb`),
//! numbers within 1,000 digits either side of the decimal point (PostgreSQL stores `1e131071` as 131,072
//! digits and refuses more), and bounded lists in query strings.

use super::error::{Error, Invalid};
use serde_json::{json, Value};

/// Decimal places a stored number may reach on either side of the point.
pub const MAX_NUMBER_DIGITS: i64 = 1_000;

/// Every string (keys included) and number of a JSON body, or a 422 naming the first one that cannot be
/// stored.
pub fn check_body(value: &Value) -> Result<(), Error> {
    let mut pending: Vec<(&Value, Vec<Value>)> = vec![(value, vec![json!("body")])];
    while let Some((value, loc)) = pending.pop() {
        match value {
            Value::String(text) => check_text(text, &loc)?,
            Value::Number(number) => {
                if !number_fits(&number.to_string()) {
                    return Err(Error::validation(Invalid {
                        input: Value::String(number.to_string()),
                        ..Invalid::new(
                            "value_error",
                            loc,
                            format!(
                                "Number out of range: at most {MAX_NUMBER_DIGITS} digits before or after the decimal point"
                            ),
                        )
                    }));
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    pending.push((item, extended(&loc, json!(index))));
                }
            }
            Value::Object(members) => {
                for (key, member) in members {
                    let at = extended(&loc, json!(key.replace('\0', "\\u0000")));
                    check_text(key, &at)?;
                    pending.push((member, at));
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
    }
    Ok(())
}

fn extended(loc: &[Value], next: Value) -> Vec<Value> {
    let mut loc = loc.to_vec();
    loc.push(next);
    loc
}

/// A text value at `loc` (`["query", "q"]`, `["path", "tenant_id"]`, a body path).
pub fn check_text(text: &str, loc: &[Value]) -> Result<(), Error> {
    if text.contains('\0') {
        return Err(Error::validation(Invalid {
            input: Value::String(text.replace('\0', "\\u0000")),
            ..Invalid::new(
                "value_error",
                loc.to_vec(),
                "Text must not contain NUL (\\u0000) characters",
            )
        }));
    }
    Ok(())
}

/// Whether a JSON number's text (`-12.5e3`) has its first and last significant digits within
/// `MAX_NUMBER_DIGITS` places of the decimal point. Zero always fits.
pub fn number_fits(text: &str) -> bool {
    let text = text.trim_start_matches('-');
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, "0"),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    let Some(first) = digits.iter().position(|digit| *digit != b'0') else {
        return true;
    };
    let last = digits
        .iter()
        .rposition(|digit| *digit != b'0')
        .unwrap_or(first);
    let exponent_digits = exponent.trim_start_matches(['+', '-']);
    if exponent_digits.len() > 12 {
        return false;
    }
    let exponent: i64 = exponent.parse().unwrap_or(i64::MAX);
    // Place of digit `i` (0-based, left to right): int.len() - 1 - i, shifted by the exponent.
    let place = |index: usize| int.len() as i64 - 1 - index as i64 + exponent;
    place(first) <= MAX_NUMBER_DIGITS && place(last) >= -MAX_NUMBER_DIGITS
}

/// A comma-separated list parameter, at most `max` items.
pub fn check_list_len(name: &str, items: &[String], max: usize) -> Result<(), Error> {
    if items.len() > max {
        return Err(Error::validation(Invalid::query(
            name,
            "too_long",
            format!("At most {max} items ({} given)", items.len()),
            &items.len().to_string(),
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_within_a_thousand_places_fit() {
        let cases = [
            ("0", true),
            ("0e999999999999999999", true),
            ("-0.000", true),
            ("12.5", true),
            ("1e1000", true),
            ("1e1001", false),
            ("1e1000000", false),
            ("9.99e1000", true),
            ("10e1000", false),
            ("1e-1000", true),
            ("1.5e-1000", false),
            ("1e-1001", false),
            ("-123456789012345678901234567890", true),
            ("1e99999999999999999999", false),
        ];
        for (text, fits) in cases {
            assert_eq!(number_fits(text), fits, "{text}");
        }
    }

    #[test]
    fn nul_anywhere_in_a_body_is_refused_with_its_location() {
        let body: Value = serde_json::from_str(r#"{"a": [1, {"b\u0000": 2}]}"#).expect("json");
        let Err(Error::Validation(problems)) = check_body(&body) else {
            panic!("a NUL key is refused");
        };
        assert_eq!(
            problems[0].loc,
            [json!("body"), json!("a"), json!(1), json!("b\\u0000")]
        );
        assert!(check_body(&json!({"text": "fine", "n": 1e300})).is_ok());
    }
}
