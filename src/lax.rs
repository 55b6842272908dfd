//! Pydantic's lax mode, which SDK users rely on: `"5"` is an int, `"true"` a bool; and JSON Schema's
//! `integer`, which includes integral numbers written with a fraction (`5.0`).

use serde::{Deserialize, Deserializer};
use serde_json::Value;

pub fn yes() -> bool {
    true
}

pub fn bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let value = Value::deserialize(deserializer)?;
    let parsed = match &value {
        Value::Bool(flag) => Some(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(text) => match ascii_trimmed(text).to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "on" | "1" => Some(true),
            "false" | "f" | "no" | "n" | "off" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    };
    parsed.ok_or_else(|| serde::de::Error::custom("Input should be a valid boolean"))
}

pub fn optional_int<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    let parsed = match &value {
        Value::Null => return Ok(None),
        Value::Number(number) => integral(number),
        Value::String(text) => ascii_trimmed(text).parse::<i64>().ok(),
        _ => None,
    };
    parsed
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("Input should be a valid integer"))
}

/// A JSON Schema `integer`: an integral number, also when written `5.0` (what clients in JavaScript or
/// Python send for computed values); see [`MAX_SAFE_INTEGER`].
pub fn integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    optional_integer(deserializer)?
        .ok_or_else(|| serde::de::Error::custom("Input should be a valid integer"))
}

/// [`integer`], or `null`.
pub fn optional_integer<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    nullable_integral(Value::deserialize(deserializer)?)
        .ok_or_else(|| serde::de::Error::custom("Input should be a valid integer"))
}

/// `null` as `Some(None)`, an integral number as `Some(Some(_))`, anything else as `None`.
fn nullable_integral(value: Value) -> Option<Option<i64>> {
    match value {
        Value::Null => Some(None),
        Value::Number(number) => integral(&number).map(Some),
        _ => None,
    }
}

/// Integers written with a fraction are read up to here: a double holds every integer to this one exactly
/// (JavaScript's `Number.MAX_SAFE_INTEGER`). Written without one, any `i64` is read.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

fn integral(number: &serde_json::Number) -> Option<i64> {
    number.as_i64().or_else(|| {
        number
            .as_f64()
            .filter(|float| float.fract() == 0.0 && float.abs() <= MAX_SAFE_INTEGER)
            .map(|float| float as i64)
    })
}

/// A count or code that cannot be negative, as a JSON Schema `integer` (`5.0` too): 0 to `i64::MAX`
/// (what the stores hold), and within `T`.
pub fn unsigned<'de, D: Deserializer<'de>, T: TryFrom<i64>>(
    deserializer: D,
) -> Result<T, D::Error> {
    optional_unsigned(deserializer)?
        .ok_or_else(|| serde::de::Error::custom("Input should be a valid integer"))
}

/// [`unsigned`], or `null`.
pub fn optional_unsigned<'de, D: Deserializer<'de>, T: TryFrom<i64>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    match nullable_integral(Value::deserialize(deserializer)?) {
        Some(None) => Some(None),
        Some(Some(number)) if number >= 0 => T::try_from(number).ok().map(Some),
        _ => None,
    }
    .ok_or_else(|| serde::de::Error::custom("Input should be a non-negative integer in range"))
}

/// Text without the ASCII whitespace around it: the `[\t\n\f\r ]` of the patterns below, so that the
/// OpenAPI document states exactly what is read.
fn ascii_trimmed(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_ascii_whitespace())
}

const TRUE_TEXT: &str =
    "^[\\t\\n\\f\\r ]*([Tt]([Rr][Uu][Ee])?|[Yy]([Ee][Ss])?|[Oo][Nn]|1)[\\t\\n\\f\\r ]*$";
const FALSE_TEXT: &str =
    "^[\\t\\n\\f\\r ]*([Ff]([Aa][Ll][Ss][Ee])?|[Nn][Oo]?|[Oo][Ff][Ff]|0)[\\t\\n\\f\\r ]*$";

/// The schema of what [`bool`] reads.
pub fn bool_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Type};
    AnyOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .enum_values(Some([0, 1])),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(TRUE_TEXT)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(FALSE_TEXT)),
        )
        .description(Some(
            "A boolean; also 0/1 and true/false, t/f, yes/no, y/n, on/off in any case",
        ))
        .into()
}

/// What [`bool`] reads as `false`, as a JSON Schema.
pub fn false_schema() -> serde_json::Value {
    serde_json::json!({"anyOf": [
        {"type": "boolean", "const": false},
        {"type": "integer", "const": 0},
        {"type": "string", "pattern": FALSE_TEXT},
    ]})
}

/// The schema of what [`optional_int`] reads.
pub fn optional_int_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Type};
    AnyOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Integer).format(Some(
            utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64),
        )))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[\\t\\n\\f\\r ]*[+-]?[0-9]{1,18}[\\t\\n\\f\\r ]*$")),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some("An integer, or one written as text"))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize)]
    struct Fields {
        #[serde(default, deserialize_with = "bool")]
        flag: bool,
        #[serde(default, deserialize_with = "optional_int")]
        lax: Option<i64>,
        #[serde(default, deserialize_with = "optional_integer")]
        strict: Option<i64>,
        #[serde(default, deserialize_with = "optional_unsigned")]
        code: Option<u16>,
    }

    fn read(value: Value) -> Result<Fields, serde_json::Error> {
        serde_json::from_value(value)
    }

    #[test]
    fn booleans_are_read_as_their_documented_patterns_say() {
        for (text, expected) in [(" Yes\t", true), ("ON", true), ("f", false), ("0", false)] {
            assert_eq!(
                read(json!({"flag": text})).expect(text).flag,
                expected,
                "{text}"
            );
        }
        // Only ASCII whitespace is trimmed, as `[\t\n\f\r ]` in the document.
        for text in ["\u{85}yes", "\u{2003}no", "maybe", "2"] {
            assert!(read(json!({"flag": text})).is_err(), "{text:?}");
        }
        assert!(read(json!({"flag": 2})).is_err());
    }

    #[test]
    fn integers_may_be_written_with_a_fraction() {
        let fields = read(json!({"strict": 380.0, "lax": " -12 ", "code": 599.0})).expect("read");
        assert_eq!(
            (fields.strict, fields.lax, fields.code),
            (Some(380), Some(-12), Some(599))
        );
        assert_eq!(
            read(json!({"strict": i64::MAX})).expect("max").strict,
            Some(i64::MAX)
        );
        for value in [
            json!({"strict": 2.5}),
            json!({"strict": "5"}),
            json!({"strict": 1.0e17}),
            json!({"code": -1}),
            json!({"code": 65536}),
            json!({"code": 1.5}),
            json!({"lax": "1e3"}),
        ] {
            assert!(read(value.clone()).is_err(), "{value}");
        }
    }
}
