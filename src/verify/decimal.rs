//! Exact decimal values of JSON numbers, so that `101 = 101.0 = 1.01e2`, `0.1 = 0.1` and integers beyond 2^53
//! compare exactly. A value is sign × digits × 10^exponent with the digits stripped of leading and trailing
//! zeros, which makes equality structural and ordering a comparison of magnitudes.

use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decimal {
    negative: bool,
    /// Significant digits, no leading or trailing zeros; empty for zero.
    digits: Vec<u8>,
    /// Power of ten of the last digit.
    exponent: i64,
}

/// Exponents beyond this are not numbers a claim can mean; refusing them keeps arithmetic in range.
const MAX_EXPONENT: i64 = 1_000_000;

impl Decimal {
    /// Parses the JSON number grammar (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`), surrounding
    /// whitespace allowed, as LLM-written claims often carry it.
    pub fn parse(text: &str) -> Option<Decimal> {
        let bytes = text.trim().as_bytes();
        let mut at = 0;
        let negative = bytes.first() == Some(&b'-');
        if negative {
            at += 1;
        }
        let int_start = at;
        while at < bytes.len() && bytes[at].is_ascii_digit() {
            at += 1;
        }
        let int_digits = &bytes[int_start..at];
        if int_digits.is_empty() || (int_digits.len() > 1 && int_digits[0] == b'0') {
            return None;
        }
        let mut frac_digits: &[u8] = &[];
        if bytes.get(at) == Some(&b'.') {
            let frac_start = at + 1;
            at = frac_start;
            while at < bytes.len() && bytes[at].is_ascii_digit() {
                at += 1;
            }
            frac_digits = &bytes[frac_start..at];
            if frac_digits.is_empty() {
                return None;
            }
        }
        let mut exponent: i64 = 0;
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            let exp_negative = match bytes.get(at) {
                Some(b'-') => {
                    at += 1;
                    true
                }
                Some(b'+') => {
                    at += 1;
                    false
                }
                _ => false,
            };
            let exp_start = at;
            while at < bytes.len() && bytes[at].is_ascii_digit() {
                at += 1;
            }
            let exp_text = std::str::from_utf8(&bytes[exp_start..at]).ok()?;
            if exp_text.is_empty() || exp_text.len() > 12 {
                return None;
            }
            exponent = exp_text.parse::<i64>().ok()?;
            if exp_negative {
                exponent = -exponent;
            }
        }
        if at != bytes.len() {
            return None;
        }
        let mut digits: Vec<u8> = int_digits
            .iter()
            .chain(frac_digits)
            .map(|digit| digit - b'0')
            .collect();
        exponent -= frac_digits.len() as i64;
        let leading = digits.iter().take_while(|digit| **digit == 0).count();
        digits.drain(..leading);
        while digits.last() == Some(&0) {
            digits.pop();
            exponent += 1;
        }
        if digits.is_empty() {
            return Some(Decimal {
                negative: false,
                digits,
                exponent: 0,
            });
        }
        if exponent.abs() > MAX_EXPONENT {
            return None;
        }
        Some(Decimal {
            negative,
            digits,
            exponent,
        })
    }

    /// A count of nodes: always a number, so no parse that could fail.
    pub fn from_count(count: usize) -> Decimal {
        let mut digits: Vec<u8> = count
            .to_string()
            .bytes()
            .map(|digit| digit - b'0')
            .collect();
        let mut exponent = 0;
        while digits.last() == Some(&0) {
            digits.pop();
            exponent += 1;
        }
        if digits.is_empty() {
            exponent = 0;
        }
        Decimal {
            negative: false,
            digits,
            exponent,
        }
    }

    pub fn from_json(number: &serde_json::Number) -> Option<Decimal> {
        Decimal::parse(&number.to_string())
    }

    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// Approximate value, for aggregates and tolerances (which are approximate by nature).
    pub fn to_f64(&self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// Power of ten of the most significant digit.
    fn magnitude(&self) -> i64 {
        self.exponent + self.digits.len() as i64 - 1
    }

    fn cmp_magnitude(&self, other: &Decimal) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        self.magnitude()
            .cmp(&other.magnitude())
            // Same leading power: compare digit by digit, a missing digit being 0.
            .then_with(|| self.digits.cmp(&other.digits))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        let sign = |value: &Decimal| {
            if value.is_zero() {
                0
            } else if value.negative {
                -1
            } else {
                1
            }
        };
        match sign(self).cmp(&sign(other)) {
            Ordering::Equal if sign(self) < 0 => other.cmp_magnitude(self),
            Ordering::Equal => self.cmp_magnitude(other),
            unequal => unequal,
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Positional notation as people write numbers (`50`, `0.001`, `89.5`); scientific only for extreme exponents.
impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const POSITIONAL: i64 = 40;
        if self.is_zero() {
            return f.write_str("0");
        }
        let digits: String = self
            .digits
            .iter()
            .map(|digit| char::from(b'0' + digit))
            .collect();
        let sign = if self.negative { "-" } else { "" };
        let length = digits.len() as i64;
        if (0..=POSITIONAL).contains(&self.exponent) {
            write!(f, "{sign}{digits}{}", "0".repeat(self.exponent as usize))
        } else if self.exponent < 0 && -self.exponent < length {
            let (whole, fraction) = digits.split_at((length + self.exponent) as usize);
            write!(f, "{sign}{whole}.{fraction}")
        } else if self.exponent < 0 && -self.exponent <= POSITIONAL {
            write!(
                f,
                "{sign}0.{}{digits}",
                "0".repeat((-self.exponent - length) as usize)
            )
        } else {
            let (first, rest) = digits.split_at(1);
            let point = if rest.is_empty() {
                String::new()
            } else {
                format!(".{rest}")
            };
            write!(f, "{sign}{first}{point}e{}", self.exponent + length - 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::parse(text).unwrap_or_else(|| panic!("{text} should parse"))
    }

    #[test]
    fn equal_values_in_every_spelling() {
        let groups: &[&[&str]] = &[
            &["101", "101.0", "1.01e2", "10100e-2", "1.010E+2", " 101 "],
            &["0", "-0", "0.0", "0e10", "-0.000"],
            &["0.1", "1e-1", "0.10"],
            &[
                "9007199254740993",
                "9007199254740993.0",
                "9.007199254740993e15",
            ],
            &["-89.5", "-8.95e1"],
        ];
        for group in groups {
            for pair in group.windows(2) {
                assert_eq!(d(pair[0]), d(pair[1]), "{} = {}", pair[0], pair[1]);
            }
        }
    }

    #[test]
    fn integers_beyond_two_to_the_53_stay_distinct() {
        assert_ne!(d("9007199254740993"), d("9007199254740992"));
        assert!(d("9007199254740993") > d("9007199254740992"));
        assert_ne!(
            d("123456789012345678901234567890"),
            d("123456789012345678901234567891")
        );
    }

    #[test]
    fn ordering_follows_the_number_line() {
        let ascending = [
            "-1e3", "-100", "-1.5", "-0.001", "0", "1e-9", "0.1", "0.11", "1", "1.5", "2", "10",
            "99.99", "1e2", "1e400",
        ];
        for pair in ascending.windows(2) {
            assert!(d(pair[0]) < d(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn non_numbers_are_refused() {
        for text in [
            "",
            "-",
            "01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "0x10",
            "1,000",
            "NaN",
            "Infinity",
            "1 2",
            "1e99999999999999",
            "abc",
        ] {
            assert_eq!(Decimal::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn display_is_positional_and_round_trips() {
        let cases = [
            ("50", "50"),
            ("5e1", "50"),
            ("89.50", "89.5"),
            ("0.001", "0.001"),
            ("-1.5", "-1.5"),
            ("1e-3", "0.001"),
            ("123.456", "123.456"),
            ("9007199254740993", "9007199254740993"),
            ("0", "0"),
            ("1e400", "1e400"),
            ("1.5e-300", "1.5e-300"),
            ("-12e50", "-1.2e51"),
        ];
        for (input, shown) in cases {
            assert_eq!(d(input).to_string(), shown, "{input}");
            assert_eq!(d(shown), d(input), "{shown} parses back");
        }
    }

    #[test]
    fn json_numbers_keep_their_exact_text() {
        let value: serde_json::Value =
            serde_json::from_str("[9007199254740993, 89.50]").expect("json");
        let numbers: Vec<Decimal> = value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item.as_number().and_then(Decimal::from_json))
            .collect();
        assert_eq!(numbers, vec![d("9007199254740993"), d("89.5")]);
        assert_eq!(d("89.50").to_f64(), 89.5);
    }

    #[test]
    fn counts_are_the_decimals_their_text_parses_to() {
        for count in [0usize, 1, 7, 10, 100, 1200, 90_009, usize::MAX] {
            assert_eq!(
                Some(Decimal::from_count(count)),
                Decimal::parse(&count.to_string()),
                "{count}"
            );
        }
    }
}
