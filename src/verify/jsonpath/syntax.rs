//! The syntax tree of an RFC 9535 query, as the parser builds it: only well-typed queries are representable
//! (comparisons hold comparables, test expressions hold queries or logical functions).

use crate::verify::decimal::Decimal;

/// `$…` or `@…`: a root or relative query and its segments.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub relative: bool,
    pub segments: Vec<Segment>,
}

impl Query {
    /// Only name and index selectors, one per child segment (RFC 9535 §2.3.5.1).
    pub fn is_singular(&self) -> bool {
        self.segments.iter().all(|segment| {
            !segment.descendant
                && matches!(
                    segment.selectors.as_slice(),
                    [Selector::Name(_)] | [Selector::Index(_)]
                )
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// `..`: the selectors apply to the input node and every descendant.
    pub descendant: bool,
    pub selectors: Vec<Selector>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Selector {
    Name(String),
    Wildcard,
    Index(i64),
    Slice {
        start: Option<i64>,
        end: Option<i64>,
        step: Option<i64>,
    },
    Filter(Logical),
}

/// `a || b || …` of `x && y && …`.
#[derive(Clone, Debug, PartialEq)]
pub struct Logical {
    pub any_of: Vec<Vec<Basic>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Basic {
    Paren {
        negated: bool,
        inner: Logical,
    },
    Compare(Comparable, CompareOp, Comparable),
    /// A query tested for a non-empty result.
    Exists {
        negated: bool,
        query: Query,
    },
    /// `match(…)` or `search(…)`.
    Test {
        negated: bool,
        function: Function,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Number(Decimal),
    String(String),
    Bool(bool),
    Null,
}

/// What a comparison or a value-typed function argument may hold.
#[derive(Clone, Debug, PartialEq)]
pub enum Comparable {
    Literal(Literal),
    /// A singular query: one node or nothing.
    Query(Query),
    /// `length`, `count` or `value`.
    Function(Box<Function>),
}

/// The five functions of RFC 9535 §2.4, with arguments already type-checked.
#[derive(Clone, Debug, PartialEq)]
pub enum Function {
    Length(Comparable),
    Count(Query),
    Value(Query),
    Match(Comparable, Comparable),
    Search(Comparable, Comparable),
}
