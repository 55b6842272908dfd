//! The one timestamp type of the wire and the store: UTC, microsecond precision, RFC 3339 with `Z`.
//!
//! Parsing is as lenient as the SDK's clients need (RFC 3339 with any offset, naive ISO 8601 taken as UTC,
//! Unix seconds as a number); output is always `YYYY-MM-DDTHH:MM:SS.ffffffZ`, which also sorts as text.

use chrono::{DateTime, NaiveDateTime, SubsecRound, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Self {
        Self(Utc::now().trunc_subsecs(6))
    }

    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        Self(at.trunc_subsecs(6))
    }

    pub fn from_micros(micros: i64) -> Option<Self> {
        DateTime::from_timestamp_micros(micros).map(Self)
    }

    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    pub fn micros(&self) -> i64 {
        self.0.timestamp_micros()
    }

    /// Whole seconds since the Unix epoch (rounded down).
    pub fn unix_seconds(&self) -> i64 {
        self.0.timestamp()
    }

    /// This time plus `seconds`, or `None` past the representable range.
    pub fn plus_seconds(&self, seconds: i64) -> Option<Self> {
        let delta = chrono::TimeDelta::try_seconds(seconds)?;
        self.0.checked_add_signed(delta).map(Self)
    }

    /// This time plus `wait`, or the latest representable time when that is past the range.
    pub fn after(&self, wait: std::time::Duration) -> Self {
        chrono::TimeDelta::from_std(wait)
            .ok()
            .and_then(|delta| self.0.checked_add_signed(delta))
            .map_or(Self(DateTime::<Utc>::MAX_UTC), Self)
    }

    /// How long from now until this time (zero when it has passed).
    pub fn wait_from_now(&self) -> std::time::Duration {
        (self.0 - Utc::now()).to_std().unwrap_or_default()
    }

    /// Parses RFC 3339 (any offset), naive ISO 8601 (taken as UTC) or a date alone (midnight UTC).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Ok(at) = DateTime::parse_from_rfc3339(text) {
            return Some(Self::from_datetime(at.with_timezone(&Utc)));
        }
        for format in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
        ] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
                return Some(Self::from_datetime(Utc.from_utc_datetime(&naive)));
            }
        }
        if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return date
                .and_hms_opt(0, 0, 0)
                .map(|naive| Self(Utc.from_utc_datetime(&naive)));
        }
        None
    }

    /// Unix seconds (fractions allowed), as Python clients send `time.time()`: years 0000 to 9999, what
    /// RFC 3339 can write back.
    pub fn from_unix_seconds(seconds: f64) -> Option<Self> {
        if !(FIRST_UNIX_SECOND..END_UNIX_SECOND).contains(&seconds) {
            return None;
        }
        let micros = (seconds * 1_000_000.0).round();
        if micros.abs() > i64::MAX as f64 {
            return None;
        }
        Self::from_micros(micros as i64)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use chrono::{Datelike, Timelike};
        let time = &self.0;
        // Years beyond four digits and leap seconds take chrono's general path.
        if !(0..=9999).contains(&time.year()) || time.nanosecond() >= 1_000_000_000 {
            return write!(f, "{}", time.format("%Y-%m-%dT%H:%M:%S%.6fZ"));
        }
        // Every record, packet and event carries several timestamps; putting the digits in place is several
        // times faster than interpreting a strftime pattern, or padding each field through `fmt`.
        let mut text = *b"0000-00-00T00:00:00.000000Z";
        let fields = [
            (0, 4, time.year() as u32),
            (5, 2, time.month()),
            (8, 2, time.day()),
            (11, 2, time.hour()),
            (14, 2, time.minute()),
            (17, 2, time.second()),
            (20, 6, time.timestamp_subsec_micros()),
        ];
        for (start, width, mut value) in fields {
            for place in text[start..start + width].iter_mut().rev() {
                *place = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Through `Value` so that numbers work with serde_json's `arbitrary_precision`.
        let value = serde_json::Value::deserialize(deserializer)?;
        let parsed = match &value {
            serde_json::Value::String(text) => Timestamp::parse(text),
            serde_json::Value::Number(number) => {
                number.as_f64().and_then(Timestamp::from_unix_seconds)
            }
            _ => None,
        };
        parsed.ok_or_else(|| serde::de::Error::custom("Input should be a valid datetime"))
    }
}

/// 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z in Unix seconds: the range of a timestamp sent as a number.
const FIRST_UNIX_SECOND: f64 = -62_167_219_200.0;
const END_UNIX_SECOND: f64 = 253_402_300_800.0;

/// In the OpenAPI document a timestamp is an RFC 3339 string (docs/api.md decision 10: every answer writes UTC with
/// `Z`); a request may also send Unix seconds.
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        use utoipa::openapi::{KnownFormat, SchemaFormat};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                    .examples(["2026-11-21T09:14:32.682573Z"]),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .description(Some("Unix seconds (requests only)"))
                    .minimum(Some(FIRST_UNIX_SECOND))
                    .exclusive_maximum(Some(END_UNIX_SECOND)),
            )
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_clients_send() {
        let cases = [
            ("2026-11-21T09:14:32.682573Z", "2026-11-21T09:14:32.682573Z"),
            ("2026-11-21T09:14:32Z", "2026-11-21T09:14:32.000000Z"),
            ("2026-11-21T10:14:32+01:00", "2026-11-21T09:14:32.000000Z"),
            ("2026-11-21T09:14:32.178679", "2026-11-21T09:14:32.178679Z"),
            ("2026-11-21 09:14:32", "2026-11-21T09:14:32.000000Z"),
            ("2026-11-21", "2026-11-21T00:00:00.000000Z"),
            (
                "2026-11-21T09:14:32.1234567Z",
                "2026-11-21T09:14:32.123456Z",
            ),
        ];
        for (input, expected) in cases {
            let parsed = Timestamp::parse(input).unwrap_or_else(|| panic!("{input} did not parse"));
            assert_eq!(parsed.to_string(), expected, "{input}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for input in ["", "yesterday", "2026-13-01", "12:00"] {
            assert!(Timestamp::parse(input).is_none(), "{input} parsed");
        }
    }

    #[test]
    fn unix_numbers_become_timestamps() {
        let parsed: Timestamp = serde_json::from_str("1763716472.5").expect("number timestamp");
        assert_eq!(parsed.to_string(), "2025-11-21T09:14:32.500000Z");
        assert!(serde_json::from_str::<Timestamp>("true").is_err());
    }

    #[test]
    fn display_agrees_with_the_strftime_pattern() {
        let pattern = "%Y-%m-%dT%H:%M:%S%.6fZ";
        let mut micros: i64 = -62_167_219_200_000_000 - 86_400_000_000; // the day before year 0
        let step = 7_919_999_999_937; // about three months, never a round number of seconds
        while micros < 253_402_300_800_000_000 + 86_400_000_000 {
            let at = Timestamp::from_micros(micros).expect("in range");
            assert_eq!(at.to_string(), at.0.format(pattern).to_string(), "{micros}");
            micros += step;
        }
        let leap = Timestamp::parse("2016-12-31T23:59:60.5Z").expect("leap second");
        assert_eq!(leap.to_string(), leap.0.format(pattern).to_string());
    }

    #[test]
    fn micros_round_trip() {
        let now = Timestamp::now();
        assert_eq!(Timestamp::from_micros(now.micros()), Some(now));
    }
}
