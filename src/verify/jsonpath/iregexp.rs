//! I-Regexp (RFC 9485), the regular expressions of `match()` and `search()`: checked against its grammar,
//! translated to the `regex` crate's dialect (`.` excludes CR and LF; `^` and `$` anchor at the ends of the
//! string, as the compliance suite expects; every other character is a literal), compiled once per request
//! and pattern under size limits.

use super::super::budget::{Budget, Exhausted};
use regex::{Regex, RegexBuilder};
use std::collections::HashMap;

/// Distinct patterns one request may compile; a document can supply a new pattern per node.
const MAX_CACHED: usize = 256;
/// Steps charged for compiling one pattern, beyond one per byte of it.
const COMPILE_STEPS: u64 = 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Anchoring {
    /// `match()`: the whole string.
    Whole,
    /// `search()`: any substring.
    Anywhere,
}

/// Compiled patterns of one request; `None` for a pattern that is not an I-Regexp (such a function is false).
#[derive(Default)]
pub struct RegexCache {
    compiled: HashMap<(String, Anchoring), Option<Regex>>,
}

impl std::fmt::Debug for RegexCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegexCache")
            .field("patterns", &self.compiled.len())
            .finish()
    }
}

impl RegexCache {
    /// Whether `subject` matches `pattern`; false when the pattern is not an I-Regexp (RFC 9535 §2.4.6).
    pub fn is_match(
        &mut self,
        pattern: &str,
        anchoring: Anchoring,
        subject: &str,
        budget: &mut Budget,
    ) -> Result<bool, Exhausted> {
        // Matching is linear in the subject for a compiled pattern of bounded size.
        budget.spend(1 + subject.len() as u64 / 16)?;
        let key = (pattern.to_string(), anchoring);
        if let Some(regex) = self.compiled.get(&key) {
            return Ok(regex.as_ref().is_some_and(|regex| regex.is_match(subject)));
        }
        let regex = compile(pattern, anchoring, budget)?;
        let found = regex.as_ref().is_some_and(|regex| regex.is_match(subject));
        if self.compiled.len() < MAX_CACHED {
            self.compiled.insert(key, regex);
        }
        Ok(found)
    }
}

fn compile(
    pattern: &str,
    anchoring: Anchoring,
    budget: &mut Budget,
) -> Result<Option<Regex>, Exhausted> {
    let limits = *budget.limits();
    if pattern.len() > limits.regex_bytes {
        return Err(Exhausted::RegexTooLarge(limits.regex_bytes));
    }
    budget.spend(COMPILE_STEPS + pattern.len() as u64)?;
    let Some(translated) = translate(pattern) else {
        return Ok(None);
    };
    let anchored = match anchoring {
        Anchoring::Whole => format!("^(?:{translated})$"),
        Anchoring::Anywhere => translated,
    };
    match RegexBuilder::new(&anchored)
        .size_limit(limits.regex_compiled_bytes)
        .dfa_size_limit(limits.regex_compiled_bytes)
        .nest_limit(64)
        .build()
    {
        Ok(regex) => Ok(Some(regex)),
        Err(regex::Error::CompiledTooBig(_)) => {
            Err(Exhausted::RegexTooLarge(limits.regex_compiled_bytes))
        }
        Err(_) => Ok(None),
    }
}

/// The `regex` crate's spelling of an I-Regexp, or `None` if `pattern` is not one.
pub fn translate(pattern: &str) -> Option<String> {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut depth = 0usize;
    // Whether a quantifier may follow: there is an atom just before it, not yet quantified.
    let mut quantifiable = false;
    while let Some(c) = chars.next() {
        match c {
            '(' => {
                depth += 1;
                out.push_str("(?:");
                quantifiable = false;
            }
            ')' => {
                depth = depth.checked_sub(1)?;
                out.push(')');
                quantifiable = true;
            }
            '|' => {
                out.push('|');
                quantifiable = false;
            }
            '*' | '+' | '?' => {
                if !quantifiable {
                    return None;
                }
                out.push(c);
                quantifiable = false;
            }
            '{' => {
                if !quantifiable {
                    return None;
                }
                out.push('{');
                out.push_str(&range_quantifier(&mut chars)?);
                out.push('}');
                quantifiable = false;
            }
            '.' => {
                out.push_str("[^\\n\\r]");
                quantifiable = true;
            }
            '[' => {
                out.push('[');
                class(&mut chars, &mut out)?;
                quantifiable = true;
            }
            '\\' => {
                escape(&mut chars, &mut out)?;
                quantifiable = true;
            }
            ']' | '}' => return None,
            '^' | '$' => {
                out.push(c);
                quantifiable = false;
            }
            c => {
                literal(c, &mut out);
                quantifiable = true;
            }
        }
    }
    (depth == 0).then_some(out)
}

/// After `{`: `QuantExact ["," [QuantExact]] "}"`, returned without the braces.
fn range_quantifier(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
    let mut text = String::new();
    let digits = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, text: &mut String| {
        let mut any = false;
        while let Some(digit) = chars.next_if(char::is_ascii_digit) {
            text.push(digit);
            any = true;
        }
        any
    };
    if !digits(chars, &mut text) {
        return None;
    }
    if chars.next_if_eq(&',').is_some() {
        text.push(',');
        digits(chars, &mut text);
    }
    chars.next_if_eq(&'}')?;
    Some(text)
}

/// After `\` outside or inside a class: a single-character escape or `\p{…}` / `\P{…}`.
fn escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String) -> Option<()> {
    match chars.next()? {
        'n' => out.push_str("\\n"),
        'r' => out.push_str("\\r"),
        't' => out.push_str("\\t"),
        c
        @ ('(' | ')' | '*' | '+' | '-' | '.' | '?' | '[' | '\\' | ']' | '^' | '{' | '|' | '}') => {
            out.push('\\');
            out.push(c);
        }
        kind @ ('p' | 'P') => {
            chars.next_if_eq(&'{')?;
            let mut name = String::new();
            while let Some(c) = chars.next_if(char::is_ascii_alphabetic) {
                name.push(c);
            }
            chars.next_if_eq(&'}')?;
            if !is_category(&name) {
                return None;
            }
            out.push('\\');
            out.push(kind);
            out.push('{');
            out.push_str(&name);
            out.push('}');
        }
        _ => return None,
    }
    Some(())
}

/// The general categories of I-Regexp's `IsCategory`.
fn is_category(name: &str) -> bool {
    matches!(
        name,
        "L" | "Lu"
            | "Ll"
            | "Lt"
            | "Lm"
            | "Lo"
            | "M"
            | "Mn"
            | "Mc"
            | "Me"
            | "N"
            | "Nd"
            | "Nl"
            | "No"
            | "P"
            | "Pc"
            | "Pd"
            | "Ps"
            | "Pe"
            | "Pi"
            | "Pf"
            | "Po"
            | "Z"
            | "Zs"
            | "Zl"
            | "Zp"
            | "S"
            | "Sm"
            | "Sc"
            | "Sk"
            | "So"
            | "C"
            | "Cc"
            | "Cf"
            | "Co"
            | "Cn"
    )
}

/// A character matching itself, escaped where the `regex` crate gives it a meaning.
fn literal(c: char, out: &mut String) {
    if regex_syntax::is_meta_character(c) {
        out.push('\\');
    }
    out.push(c);
}

/// After `[`: `["^"] ("-" / CCE1) *CCE1 ["-"] "]"`, written through the closing bracket.
fn class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String) -> Option<()> {
    if chars.next_if_eq(&'^').is_some() {
        out.push('^');
    }
    let mut first = true;
    loop {
        let c = chars.next()?;
        match c {
            ']' if !first => {
                out.push(']');
                return Some(());
            }
            '-' if first || chars.peek() == Some(&']') => out.push_str("\\-"),
            '\\' => {
                escape(chars, out)?;
                range_end(chars, out)?;
            }
            '[' | ']' | '-' => return None,
            c => {
                literal(c, out);
                range_end(chars, out)?;
            }
        }
        first = false;
    }
}

/// The `-` CCchar that may follow a class character.
fn range_end(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String) -> Option<()> {
    let mut ahead = chars.clone();
    if ahead.next() != Some('-') {
        return Some(());
    }
    match ahead.next()? {
        ']' => Some(()), // a trailing '-' is a literal, handled by the class loop
        '[' | '-' => None,
        '\\' => {
            chars.next();
            chars.next();
            out.push('-');
            escape(chars, out)
        }
        c => {
            chars.next();
            chars.next();
            out.push('-');
            literal(c, out);
            Some(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i_regexp_translation_table() {
        let cases = [
            ("a.c", Some("a[^\\n\\r]c")),
            ("^a$", Some("^a$")),
            ("a#b", Some("a\\#b")),
            ("(ab)+", Some("(?:ab)+")),
            ("a{2,3}", Some("a{2,3}")),
            ("a{2,}", Some("a{2,}")),
            ("[a-z]", Some("[a-z]")),
            ("[^a-]", Some("[^a\\-]")),
            ("[-a]", Some("[\\-a]")),
            ("[a&&b]", Some("[a\\&\\&b]")),
            ("\\p{Lu}", Some("\\p{Lu}")),
            ("\\.", Some("\\.")),
            ("\\d", None),
            ("\\w{3}", None),
            ("(?i)a", None),
            ("a)", None),
            ("(a", None),
            ("*a", None),
            ("a**", None),
            ("a{,3}", None),
            ("[]", None),
            ("\\p{Foo}", None),
            ("}", None),
        ];
        for (pattern, expected) in cases {
            assert_eq!(translate(pattern).as_deref(), expected, "{pattern}");
        }
    }

    #[test]
    fn patterns_compile_once_per_request() {
        let mut budget = Budget::new(Default::default());
        let mut cache = RegexCache::default();
        for subject in ["abc", "abd", "xyz"] {
            cache
                .is_match("ab.", Anchoring::Whole, subject, &mut budget)
                .expect("within budget");
        }
        assert_eq!(cache.compiled.len(), 1);
    }

    #[test]
    fn oversized_patterns_are_a_resource_limit() {
        let mut budget = Budget::new(Default::default());
        let mut cache = RegexCache::default();
        let long = "a".repeat(budget.limits().regex_bytes + 1);
        assert!(matches!(
            cache.is_match(&long, Anchoring::Whole, "a", &mut budget),
            Err(Exhausted::RegexTooLarge(_))
        ));
        let huge = "(((a{100}){100}){100})";
        assert!(matches!(
            cache.is_match(huge, Anchoring::Whole, "a", &mut budget),
            Err(Exhausted::RegexTooLarge(_))
        ));
    }
}
