//! Evaluating a parsed query (RFC 9535 §2.3–2.4) against a document under a budget: every node visited,
//! selected or compared costs a step, descendants are walked with an explicit stack, and regexes come from
//! the request's cache.

use super::iregexp::{Anchoring, RegexCache};
use super::syntax::{
    Basic, Comparable, CompareOp, Function, Literal, Logical, Query, Segment, Selector,
};
use crate::verify::budget::{Budget, Exhausted};
use crate::verify::decimal::Decimal;
use serde_json::Value;
use std::cmp::Ordering;

/// The state one request carries through its queries.
#[derive(Debug)]
pub struct Evaluator {
    pub budget: Budget,
    regexes: RegexCache,
}

type Step<T> = Result<T, Exhausted>;

impl Evaluator {
    pub fn new(budget: Budget) -> Evaluator {
        Evaluator {
            budget,
            regexes: RegexCache::default(),
        }
    }

    /// The nodelist of `query` with `root` as `$` and `current` as `@`.
    pub fn select<'v>(
        &mut self,
        query: &Query,
        root: &'v Value,
        current: &'v Value,
    ) -> Step<Vec<&'v Value>> {
        let start = if query.relative { current } else { root };
        let mut nodes = vec![start];
        for segment in &query.segments {
            nodes = self.segment(segment, root, &nodes)?;
            if nodes.is_empty() {
                break;
            }
        }
        Ok(nodes)
    }

    fn segment<'v>(
        &mut self,
        segment: &Segment,
        root: &'v Value,
        inputs: &[&'v Value],
    ) -> Step<Vec<&'v Value>> {
        let mut out = Vec::new();
        if segment.descendant {
            for &input in inputs {
                for node in self.descendants_and_self(input)? {
                    self.selectors(&segment.selectors, root, node, &mut out)?;
                }
            }
        } else {
            for &input in inputs {
                self.selectors(&segment.selectors, root, input, &mut out)?;
            }
        }
        Ok(out)
    }

    /// `node` and everything below it, in document order (pre-order), without recursion.
    fn descendants_and_self<'v>(&mut self, node: &'v Value) -> Step<Vec<&'v Value>> {
        let mut order = Vec::new();
        let mut stack = vec![node];
        while let Some(next) = stack.pop() {
            self.budget.spend(1)?;
            order.push(next);
            match next {
                Value::Array(items) => stack.extend(items.iter().rev()),
                Value::Object(members) => stack.extend(members.values().rev()),
                _ => {}
            }
        }
        Ok(order)
    }

    fn selectors<'v>(
        &mut self,
        selectors: &[Selector],
        root: &'v Value,
        node: &'v Value,
        out: &mut Vec<&'v Value>,
    ) -> Step<()> {
        for selector in selectors {
            self.selector(selector, root, node, out)?;
        }
        Ok(())
    }

    fn selector<'v>(
        &mut self,
        selector: &Selector,
        root: &'v Value,
        node: &'v Value,
        out: &mut Vec<&'v Value>,
    ) -> Step<()> {
        self.budget.spend(1)?;
        match selector {
            Selector::Name(name) => {
                out.extend(node.as_object().and_then(|members| members.get(name)))
            }
            Selector::Index(index) => {
                out.extend(node.as_array().and_then(|items| element(items, *index)))
            }
            Selector::Wildcard => {
                self.budget.spend(children_len(node))?;
                match node {
                    Value::Array(items) => out.extend(items.iter()),
                    Value::Object(members) => out.extend(members.values()),
                    _ => {}
                }
            }
            Selector::Slice { start, end, step } => {
                if let Value::Array(items) = node {
                    for index in slice_indices(items.len(), *start, *end, step.unwrap_or(1)) {
                        self.budget.spend(1)?;
                        out.push(&items[index]);
                    }
                }
            }
            Selector::Filter(filter) => {
                let children: Vec<&Value> = match node {
                    Value::Array(items) => items.iter().collect(),
                    Value::Object(members) => members.values().collect(),
                    _ => Vec::new(),
                };
                for child in children {
                    self.budget.spend(1)?;
                    if self.logical(filter, root, child)? {
                        out.push(child);
                    }
                }
            }
        }
        Ok(())
    }

    fn logical(&mut self, logical: &Logical, root: &Value, current: &Value) -> Step<bool> {
        for all_of in &logical.any_of {
            let mut holds = true;
            for basic in all_of {
                if !self.basic(basic, root, current)? {
                    holds = false;
                    break;
                }
            }
            if holds {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn basic(&mut self, basic: &Basic, root: &Value, current: &Value) -> Step<bool> {
        Ok(match basic {
            Basic::Paren { negated, inner } => self.logical(inner, root, current)? != *negated,
            Basic::Exists { negated, query } => {
                let found = !self.select(query, root, current)?.is_empty();
                found != *negated
            }
            Basic::Test { negated, function } => self.test(function, root, current)? != *negated,
            Basic::Compare(left, op, right) => {
                let left = self.comparable(left, root, current)?;
                let right = self.comparable(right, root, current)?;
                self.compare(&left, *op, &right)?
            }
        })
    }

    fn test(&mut self, function: &Function, root: &Value, current: &Value) -> Step<bool> {
        let (subject, pattern, anchoring) = match function {
            Function::Match(subject, pattern) => (subject, pattern, Anchoring::Whole),
            Function::Search(subject, pattern) => (subject, pattern, Anchoring::Anywhere),
            // The parser admits only match() and search() as tests.
            _ => return Ok(false),
        };
        let subject = self.comparable(subject, root, current)?;
        let pattern = self.comparable(pattern, root, current)?;
        match (subject.as_str(), pattern.as_str()) {
            (Some(subject), Some(pattern)) => {
                self.regexes
                    .is_match(pattern, anchoring, subject, &mut self.budget)
            }
            _ => Ok(false),
        }
    }

    fn comparable<'a>(
        &mut self,
        comparable: &'a Comparable,
        root: &'a Value,
        current: &'a Value,
    ) -> Step<Operand<'a>> {
        self.budget.spend(1)?;
        Ok(match comparable {
            Comparable::Literal(literal) => Operand::Literal(literal),
            Comparable::Query(query) => {
                singular(query, root, current).map_or(Operand::Nothing, Operand::Json)
            }
            Comparable::Function(function) => match function.as_ref() {
                Function::Length(argument) => match self.comparable(argument, root, current)? {
                    Operand::Json(Value::String(text))
                    | Operand::Literal(Literal::String(text)) => {
                        self.budget.spend(text.len() as u64 / 64)?;
                        Operand::Count(text.chars().count() as u64)
                    }
                    Operand::Json(Value::Array(items)) => Operand::Count(items.len() as u64),
                    Operand::Json(Value::Object(members)) => Operand::Count(members.len() as u64),
                    _ => Operand::Nothing,
                },
                Function::Count(query) => {
                    Operand::Count(self.select(query, root, current)?.len() as u64)
                }
                Function::Value(query) => match self.select(query, root, current)?.as_slice() {
                    [one] => Operand::Json(one),
                    _ => Operand::Nothing,
                },
                Function::Match(..) | Function::Search(..) => Operand::Nothing,
            },
        })
    }

    /// RFC 9535 §2.3.5.2.2.
    fn compare(&mut self, left: &Operand<'_>, op: CompareOp, right: &Operand<'_>) -> Step<bool> {
        Ok(match op {
            CompareOp::Eq => self.equal(left, right)?,
            CompareOp::Ne => !self.equal(left, right)?,
            CompareOp::Lt => less(left, right),
            CompareOp::Gt => less(right, left),
            CompareOp::Le => less(left, right) || self.equal(left, right)?,
            CompareOp::Ge => less(right, left) || self.equal(left, right)?,
        })
    }

    fn equal(&mut self, left: &Operand<'_>, right: &Operand<'_>) -> Step<bool> {
        match (left, right) {
            (Operand::Nothing, Operand::Nothing) => Ok(true),
            (Operand::Nothing, _) | (_, Operand::Nothing) => Ok(false),
            (Operand::Json(a), Operand::Json(b)) => self.json_equal(a, b),
            _ => Ok(match (left.number(), right.number()) {
                (Some(a), Some(b)) => a == b,
                (None, None) => left.scalar() == right.scalar() && left.scalar().is_some(),
                _ => false,
            }),
        }
    }

    /// Deep equality, numbers by exact value and members in any order; every pair compared costs a step.
    fn json_equal(&mut self, a: &Value, b: &Value) -> Step<bool> {
        self.budget.spend(1)?;
        Ok(match (a, b) {
            (Value::Number(x), Value::Number(y)) => number_eq(x, y),
            (Value::Array(xs), Value::Array(ys)) => {
                if xs.len() != ys.len() {
                    return Ok(false);
                }
                for (x, y) in xs.iter().zip(ys) {
                    if !self.json_equal(x, y)? {
                        return Ok(false);
                    }
                }
                true
            }
            (Value::Object(xs), Value::Object(ys)) => {
                if xs.len() != ys.len() {
                    return Ok(false);
                }
                for (key, x) in xs {
                    match ys.get(key) {
                        Some(y) if self.json_equal(x, y)? => {}
                        _ => return Ok(false),
                    }
                }
                true
            }
            _ => a == b,
        })
    }
}

/// A value in a filter expression: a node, a literal, a computed count, or nothing.
enum Operand<'a> {
    Nothing,
    Json(&'a Value),
    Literal(&'a Literal),
    Count(u64),
}

/// A scalar that is not a number, for equality across nodes and literals.
#[derive(PartialEq)]
enum Scalar<'a> {
    String(&'a str),
    Bool(bool),
    Null,
}

impl<'a> Operand<'a> {
    fn as_str(&self) -> Option<&'a str> {
        match self {
            Operand::Json(Value::String(text)) => Some(text),
            Operand::Literal(Literal::String(text)) => Some(text),
            _ => None,
        }
    }

    fn number(&self) -> Option<Decimal> {
        match self {
            Operand::Json(Value::Number(number)) => Decimal::from_json(number),
            Operand::Literal(Literal::Number(number)) => Some(number.clone()),
            Operand::Count(count) => Decimal::parse(&count.to_string()),
            _ => None,
        }
    }

    fn scalar(&self) -> Option<Scalar<'a>> {
        match self {
            Operand::Json(Value::String(text)) | Operand::Literal(Literal::String(text)) => {
                Some(Scalar::String(text))
            }
            Operand::Json(Value::Bool(flag)) | Operand::Literal(Literal::Bool(flag)) => {
                Some(Scalar::Bool(*flag))
            }
            Operand::Json(Value::Null) | Operand::Literal(Literal::Null) => Some(Scalar::Null),
            _ => None,
        }
    }
}

/// `<` holds between two numbers or two strings (by code point), never otherwise.
fn less(left: &Operand<'_>, right: &Operand<'_>) -> bool {
    if let (Some(a), Some(b)) = (left.number(), right.number()) {
        return a.cmp(&b) == Ordering::Less;
    }
    matches!((left.as_str(), right.as_str()), (Some(a), Some(b)) if a < b)
}

fn number_eq(x: &serde_json::Number, y: &serde_json::Number) -> bool {
    match (Decimal::from_json(x), Decimal::from_json(y)) {
        (Some(a), Some(b)) => a == b,
        _ => x == y,
    }
}

/// A singular query's node, if it has one.
fn singular<'v>(query: &Query, root: &'v Value, current: &'v Value) -> Option<&'v Value> {
    let mut node = if query.relative { current } else { root };
    for segment in &query.segments {
        node = match segment.selectors.first()? {
            Selector::Name(name) => node.as_object()?.get(name)?,
            Selector::Index(index) => element(node.as_array()?, *index)?,
            _ => return None,
        };
    }
    Some(node)
}

fn element(items: &[Value], index: i64) -> Option<&Value> {
    let position = if index < 0 {
        items.len() as i64 + index
    } else {
        index
    };
    usize::try_from(position)
        .ok()
        .and_then(|position| items.get(position))
}

fn children_len(node: &Value) -> u64 {
    match node {
        Value::Array(items) => items.len() as u64,
        Value::Object(members) => members.len() as u64,
        _ => 0,
    }
}

/// The indices a slice selects (RFC 9535 §2.3.4.2.2), in selection order.
fn slice_indices(len: usize, start: Option<i64>, end: Option<i64>, step: i64) -> Vec<usize> {
    let len = len as i64;
    let normalize = |i: i64| if i >= 0 { i } else { len + i };
    let mut indices = Vec::new();
    if step > 0 {
        let lower = normalize(start.unwrap_or(0)).clamp(0, len);
        let upper = normalize(end.unwrap_or(len)).clamp(0, len);
        let mut i = lower;
        while i < upper {
            indices.push(i as usize);
            i += step;
        }
    } else if step < 0 {
        let upper = normalize(start.unwrap_or(len - 1)).clamp(-1, len - 1);
        let lower = end.map_or(-1, |end| normalize(end).clamp(-1, len - 1));
        let mut i = upper;
        while lower < i {
            indices.push(i as usize);
            i += step;
        }
    }
    indices
}

#[cfg(test)]
mod tests {
    use super::slice_indices;

    #[test]
    fn slice_table() {
        type Case = (usize, Option<i64>, Option<i64>, i64, Vec<usize>);
        let cases: [Case; 8] = [
            (5, None, None, 1, vec![0, 1, 2, 3, 4]),
            (5, Some(1), Some(3), 1, vec![1, 2]),
            (5, None, None, 2, vec![0, 2, 4]),
            (5, None, None, -1, vec![4, 3, 2, 1, 0]),
            (5, Some(-2), None, 1, vec![3, 4]),
            (5, Some(3), Some(0), -1, vec![3, 2, 1]),
            (5, None, None, 0, vec![]),
            (
                5,
                Some(-9_007_199_254_740_991),
                Some(9_007_199_254_740_991),
                9_007_199_254_740_991,
                vec![0],
            ),
        ];
        for (len, start, end, step, expected) in cases {
            assert_eq!(
                slice_indices(len, start, end, step),
                expected,
                "{start:?}:{end:?}:{step}"
            );
        }
    }
}
