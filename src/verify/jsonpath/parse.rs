//! An RFC 9535 parser that cannot be made to work hard: one pass, no backtracking past a single token, and a
//! nesting cap checked as it descends, so its recursion depth and time are bounded by the limits whatever the
//! input. Type rules of §2.4.3 are enforced here, so an ill-typed query never reaches evaluation.

use super::syntax::{
    Basic, Comparable, CompareOp, Function, Literal, Logical, Query, Segment, Selector,
};
use crate::verify::decimal::Decimal;

/// Largest integer an index or slice bound may hold (I-JSON, RFC 9535 §2.1).
const MAX_INT: i64 = (1 << 53) - 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not RFC 9535 JSONPath; the text says where and why.
    Invalid(String),
    /// Valid or not, the query is too large or too deeply nested to be accepted.
    TooComplex(String),
}

pub fn parse(text: &str, max_depth: usize) -> Result<Query, ParseError> {
    let mut parser = Parser {
        text,
        at: 0,
        depth: 0,
        max_depth,
    };
    if !parser.eat('$') {
        return Err(parser.invalid("a query starts with '$'"));
    }
    let query = parser.segments(false)?;
    if parser.at != text.len() {
        return Err(parser.invalid("unexpected character"));
    }
    Ok(query)
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
    depth: usize,
    max_depth: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, expected: char) -> bool {
        if self.peek() == Some(expected) {
            self.at += expected.len_utf8();
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, expected: &str) -> bool {
        if self.rest().starts_with(expected) {
            self.at += expected.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, expected: char) -> Result<(), ParseError> {
        if self.eat(expected) {
            Ok(())
        } else {
            Err(self.invalid(&format!("expected '{expected}'")))
        }
    }

    fn invalid(&self, what: &str) -> ParseError {
        ParseError::Invalid(format!(
            "{what} at position {}",
            self.text[..self.at].chars().count()
        ))
    }

    /// `S`: blank space, tab, line feed or carriage return.
    fn blank(&mut self) {
        while let Some(' ' | '\t' | '\n' | '\r') = self.peek() {
            self.at += 1;
        }
    }

    /// Enters one level of nesting (filter, parentheses, function call); refuses past the cap.
    fn nest(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(ParseError::TooComplex(format!(
                "the path nests deeper than {} levels",
                self.max_depth
            )));
        }
        Ok(())
    }

    fn unnest(&mut self) {
        self.depth -= 1;
    }

    /// `*(S segment)` after the identifier; blanks before something that is not a segment are left alone.
    fn segments(&mut self, relative: bool) -> Result<Query, ParseError> {
        let mut segments = Vec::new();
        loop {
            let before = self.at;
            self.blank();
            match self.peek() {
                Some('.') | Some('[') => segments.push(self.segment()?),
                _ => {
                    self.at = before;
                    break;
                }
            }
        }
        Ok(Query { relative, segments })
    }

    fn segment(&mut self) -> Result<Segment, ParseError> {
        if self.eat_str("..") {
            let selectors = match self.peek() {
                Some('[') => self.bracketed()?,
                Some('*') => {
                    self.at += 1;
                    vec![Selector::Wildcard]
                }
                _ => vec![Selector::Name(self.member_name()?)],
            };
            return Ok(Segment {
                descendant: true,
                selectors,
            });
        }
        let selectors = if self.eat('.') {
            if self.eat('*') {
                vec![Selector::Wildcard]
            } else {
                vec![Selector::Name(self.member_name()?)]
            }
        } else {
            self.bracketed()?
        };
        Ok(Segment {
            descendant: false,
            selectors,
        })
    }

    /// `member-name-shorthand`: a letter, `_` or any non-ASCII character, then those or digits.
    fn member_name(&mut self) -> Result<String, ParseError> {
        let first = |c: char| c.is_ascii_alphabetic() || c == '_' || !c.is_ascii();
        match self.peek() {
            Some(c) if first(c) => {}
            _ => return Err(self.invalid("expected a member name")),
        }
        let start = self.at;
        while let Some(c) = self.peek() {
            if first(c) || c.is_ascii_digit() {
                self.at += c.len_utf8();
            } else {
                break;
            }
        }
        Ok(self.text[start..self.at].to_string())
    }

    /// `"[" S selector *(S "," S selector) S "]"`.
    fn bracketed(&mut self) -> Result<Vec<Selector>, ParseError> {
        self.expect('[')?;
        let mut selectors = Vec::new();
        loop {
            self.blank();
            selectors.push(self.selector()?);
            self.blank();
            if self.eat(']') {
                return Ok(selectors);
            }
            self.expect(',')?;
        }
    }

    fn selector(&mut self) -> Result<Selector, ParseError> {
        match self.peek() {
            Some('\'' | '"') => Ok(Selector::Name(self.string()?)),
            Some('*') => {
                self.at += 1;
                Ok(Selector::Wildcard)
            }
            Some('?') => {
                self.at += 1;
                self.nest()?;
                self.blank();
                let filter = self.logical()?;
                self.unnest();
                Ok(Selector::Filter(filter))
            }
            Some(':') => self.slice(None),
            Some('-' | '0'..='9') => {
                let index = self.int()?;
                let before = self.at;
                self.blank();
                if self.peek() == Some(':') {
                    self.slice(Some(index))
                } else {
                    self.at = before;
                    Ok(Selector::Index(index))
                }
            }
            _ => Err(self.invalid("expected a selector")),
        }
    }

    /// From the first `:` of `[start S] ":" S [end S] [":" [S step]]`.
    fn slice(&mut self, start: Option<i64>) -> Result<Selector, ParseError> {
        self.expect(':')?;
        self.blank();
        let end = self.optional_int()?;
        self.blank();
        let step = if self.eat(':') {
            self.blank();
            self.optional_int()?
        } else {
            None
        };
        Ok(Selector::Slice { start, end, step })
    }

    fn optional_int(&mut self) -> Result<Option<i64>, ParseError> {
        match self.peek() {
            Some('-' | '0'..='9') => self.int().map(Some),
            _ => Ok(None),
        }
    }

    /// `"0" / (["-"] DIGIT1 *DIGIT)` within ±(2^53 − 1).
    fn int(&mut self) -> Result<i64, ParseError> {
        let start = self.at;
        let negative = self.eat('-');
        let digits_start = self.at;
        while let Some('0'..='9') = self.peek() {
            self.at += 1;
        }
        let digits = &self.text[digits_start..self.at];
        if digits.is_empty() || (digits.starts_with('0') && (digits.len() > 1 || negative)) {
            return Err(self.invalid("malformed integer"));
        }
        let value: i64 = if digits.len() > 16 {
            i64::MAX
        } else {
            digits.parse().unwrap_or(i64::MAX)
        };
        if value > MAX_INT {
            self.at = start;
            return Err(self.invalid("integer out of range"));
        }
        Ok(if negative { -value } else { value })
    }

    /// A string literal in single or double quotes, with JSON escapes.
    fn string(&mut self) -> Result<String, ParseError> {
        let quote = match self.peek() {
            Some(quote @ ('\'' | '"')) => quote,
            _ => return Err(self.invalid("expected a string")),
        };
        self.at += 1;
        let mut value = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.invalid("unterminated string"));
            };
            self.at += c.len_utf8();
            match c {
                c if c == quote => return Ok(value),
                '\\' => value.push(self.escape(quote)?),
                '\u{0}'..='\u{1f}' => {
                    self.at -= 1;
                    return Err(self.invalid("control character in string"));
                }
                c => value.push(c),
            }
        }
    }

    fn escape(&mut self, quote: char) -> Result<char, ParseError> {
        let Some(c) = self.peek() else {
            return Err(self.invalid("unterminated escape"));
        };
        self.at += c.len_utf8();
        Ok(match c {
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '/' => '/',
            '\\' => '\\',
            c if c == quote => c,
            'u' => {
                let high = self.hex4()?;
                match high {
                    0xD800..=0xDBFF => {
                        if !self.eat_str("\\u") {
                            return Err(self.invalid("unpaired surrogate"));
                        }
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.invalid("unpaired surrogate"));
                        }
                        let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                        char::from_u32(code).ok_or_else(|| self.invalid("invalid escape"))?
                    }
                    0xDC00..=0xDFFF => return Err(self.invalid("unpaired surrogate")),
                    code => char::from_u32(code).ok_or_else(|| self.invalid("invalid escape"))?,
                }
            }
            _ => return Err(self.invalid("invalid escape")),
        })
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let digits = self.rest().get(..4).unwrap_or_default();
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.invalid("expected four hex digits"));
        }
        self.at += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.invalid("expected four hex digits"))
    }

    /// `logical-or-expr`.
    fn logical(&mut self) -> Result<Logical, ParseError> {
        let mut any_of = vec![self.conjunction()?];
        loop {
            let before = self.at;
            self.blank();
            if self.eat_str("||") {
                self.blank();
                any_of.push(self.conjunction()?);
            } else {
                self.at = before;
                return Ok(Logical { any_of });
            }
        }
    }

    fn conjunction(&mut self) -> Result<Vec<Basic>, ParseError> {
        let mut all_of = vec![self.basic()?];
        loop {
            let before = self.at;
            self.blank();
            if self.eat_str("&&") {
                self.blank();
                all_of.push(self.basic()?);
            } else {
                self.at = before;
                return Ok(all_of);
            }
        }
    }

    /// `paren-expr / comparison-expr / test-expr`: one operand is read, then the next token decides.
    fn basic(&mut self) -> Result<Basic, ParseError> {
        let negated = self.eat('!');
        if negated {
            self.blank();
        }
        if self.eat('(') {
            self.nest()?;
            self.blank();
            let inner = self.logical()?;
            self.blank();
            self.expect(')')?;
            self.unnest();
            return Ok(Basic::Paren { negated, inner });
        }
        let operand = self.operand()?;
        let before = self.at;
        self.blank();
        if let Some(op) = self.compare_op() {
            if negated {
                return Err(self.invalid("'!' cannot negate a comparison without parentheses"));
            }
            self.blank();
            let right = self.operand()?;
            let left = self.comparable(operand)?;
            let right = self.comparable(right)?;
            return Ok(Basic::Compare(left, op, right));
        }
        self.at = before;
        match operand {
            Operand::Query(query) => Ok(Basic::Exists { negated, query }),
            Operand::Function(function @ (Function::Match(..) | Function::Search(..))) => {
                Ok(Basic::Test { negated, function })
            }
            Operand::Function(_) => Err(self.invalid("a value function must be compared")),
            Operand::Literal(_) => Err(self.invalid("a literal must be compared")),
        }
    }

    fn compare_op(&mut self) -> Option<CompareOp> {
        for (text, op) in [
            ("==", CompareOp::Eq),
            ("!=", CompareOp::Ne),
            ("<=", CompareOp::Le),
            (">=", CompareOp::Ge),
            ("<", CompareOp::Lt),
            (">", CompareOp::Gt),
        ] {
            if self.eat_str(text) {
                return Some(op);
            }
        }
        None
    }

    /// A comparison side must be a literal, a singular query or a value function.
    fn comparable(&self, operand: Operand) -> Result<Comparable, ParseError> {
        match operand {
            Operand::Literal(literal) => Ok(Comparable::Literal(literal)),
            Operand::Query(query) if query.is_singular() => Ok(Comparable::Query(query)),
            Operand::Query(_) => Err(self.invalid("only a singular query can be compared")),
            Operand::Function(
                function @ (Function::Length(_) | Function::Count(_) | Function::Value(_)),
            ) => Ok(Comparable::Function(Box::new(function))),
            Operand::Function(_) => Err(self.invalid("a logical function cannot be compared")),
        }
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        match self.peek() {
            Some('@') => {
                self.at += 1;
                Ok(Operand::Query(self.segments(true)?))
            }
            Some('$') => {
                self.at += 1;
                Ok(Operand::Query(self.segments(false)?))
            }
            Some('\'' | '"') => Ok(Operand::Literal(Literal::String(self.string()?))),
            Some('-' | '0'..='9') => Ok(Operand::Literal(Literal::Number(self.number()?))),
            Some('a'..='z') => {
                for (word, literal) in [
                    ("true", Literal::Bool(true)),
                    ("false", Literal::Bool(false)),
                    ("null", Literal::Null),
                ] {
                    if self.rest().starts_with(word)
                        && !self.rest()[word.len()..].starts_with(name_char)
                    {
                        self.at += word.len();
                        return Ok(Operand::Literal(literal));
                    }
                }
                Ok(Operand::Function(self.function()?))
            }
            _ => Err(self.invalid("expected a query, literal or function")),
        }
    }

    /// `(int / "-0") [frac] [exp]`.
    fn number(&mut self) -> Result<Decimal, ParseError> {
        let start = self.at;
        self.eat('-');
        let int_start = self.at;
        while let Some('0'..='9') = self.peek() {
            self.at += 1;
        }
        let int = &self.text[int_start..self.at];
        if int.is_empty() || (int.len() > 1 && int.starts_with('0')) {
            return Err(self.invalid("malformed number"));
        }
        if self.peek() == Some('.') {
            self.at += 1;
            if !self.digits() {
                return Err(self.invalid("malformed number"));
            }
        }
        if let Some('e' | 'E') = self.peek() {
            self.at += 1;
            if let Some('+' | '-') = self.peek() {
                self.at += 1;
            }
            if !self.digits() {
                return Err(self.invalid("malformed number"));
            }
        }
        Decimal::parse(&self.text[start..self.at])
            .ok_or_else(|| ParseError::TooComplex("number out of range".into()))
    }

    fn digits(&mut self) -> bool {
        let start = self.at;
        while let Some('0'..='9') = self.peek() {
            self.at += 1;
        }
        self.at > start
    }

    /// `function-name "(" S [argument *(S "," S argument)] S ")"`, checked against the five functions.
    fn function(&mut self) -> Result<Function, ParseError> {
        let start = self.at;
        while let Some(c) = self.peek() {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                self.at += 1;
            } else {
                break;
            }
        }
        let name = &self.text[start..self.at];
        if !self.eat('(') {
            return Err(self.invalid("expected '(' after a function name"));
        }
        self.nest()?;
        let mut args = Vec::new();
        self.blank();
        if !self.eat(')') {
            loop {
                args.push(self.operand()?);
                self.blank();
                if self.eat(')') {
                    break;
                }
                self.expect(',')?;
                self.blank();
            }
        }
        self.unnest();
        let given = args.len();
        let arity = |expected: usize| {
            if given == expected {
                Ok(())
            } else {
                Err(self.invalid(&format!("{name}() takes {expected} argument(s)")))
            }
        };
        let mut args = args.into_iter();
        let function = match name {
            "length" => {
                arity(1)?;
                Function::Length(self.value_arg(args.next())?)
            }
            "count" => {
                arity(1)?;
                Function::Count(self.nodes_arg(args.next())?)
            }
            "value" => {
                arity(1)?;
                Function::Value(self.nodes_arg(args.next())?)
            }
            "match" | "search" => {
                arity(2)?;
                let subject = self.value_arg(args.next())?;
                let pattern = self.value_arg(args.next())?;
                if name == "match" {
                    Function::Match(subject, pattern)
                } else {
                    Function::Search(subject, pattern)
                }
            }
            _ => return Err(self.invalid(&format!("unknown function '{name}'"))),
        };
        Ok(function)
    }

    /// A `ValueType` parameter: literal, singular query or value function.
    fn value_arg(&self, arg: Option<Operand>) -> Result<Comparable, ParseError> {
        match arg {
            Some(operand) => self.comparable(operand),
            None => Err(self.invalid("missing argument")),
        }
    }

    /// A `NodesType` parameter: a query.
    fn nodes_arg(&self, arg: Option<Operand>) -> Result<Query, ParseError> {
        match arg {
            Some(Operand::Query(query)) => Ok(query),
            _ => Err(self.invalid("expected a query argument")),
        }
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// An operand before its role (comparison side, test, argument) is known.
enum Operand {
    Literal(Literal),
    Query(Query),
    Function(Function),
}
