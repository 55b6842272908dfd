//! The evaluator against docs/evaluator.md: every worked example, the evidence gates, and a property test that no input panics or leaves a non-PASS without a reason.

use super::claim::Payload;
use super::evaluate::{evaluate, Evidence, EvidenceRef};
use super::outcome::{Outcome, Reason};
use serde_json::{json, Value};

const ORDER: &str = r#"{"order": {"id": 7, "status": "shipped", "total": 89.5,
    "items": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}]}}"#;

fn order() -> Value {
    serde_json::from_str(ORDER).expect("order document")
}

/// Evaluates one claim against one document that every record id resolves to.
fn one(claim: Value, document: &Value) -> (Outcome, Reason, super::ClaimResult) {
    let mut claim = claim;
    if claim.get("record_id").is_none()
        && claim
            .get("claimed_value")
            .and_then(|v| v.get(0))
            .and_then(|e| e.get("sourcerykit_ref"))
            .is_none()
    {
        claim["record_id"] = json!("rec-1");
    }
    let payload = Payload::parse(&json!({"claims": [claim]})).expect("payload");
    let evaluation = evaluate(&payload, |_| Evidence::Json(document));
    let result = evaluation.per_claim[0].clone();
    (result.result, result.reason, result)
}

#[test]
fn worked_examples_of_the_spec() {
    let document = order();
    let rows: Vec<(Value, Outcome, Reason)> = vec![
        (json!({"verification_mode": "exact", "json_path": "$.order.status", "claimed_value": "shipped"}), Outcome::Pass, Reason::Match),
        (json!({"verification_mode": "exact", "json_path": "$.order.id", "claimed_value": "7"}), Outcome::Caught, Reason::ValueMismatch),
        (serde_json::from_str(r#"{"verification_mode": "exact", "json_path": "$.order.total", "claimed_value": 89.50}"#).expect("json"), Outcome::Pass, Reason::Match),
        (json!({"verification_mode": "field_extraction", "json_path": "$", "claimed_value": [{"path": "$.order.id", "value": "7"}]}), Outcome::Pass, Reason::Match),
        (json!({"verification_mode": "field_extraction", "json_path": "$", "claimed_value": [{"path": "$.order.total", "value": " 89.5 "}]}), Outcome::Pass, Reason::Match),
        (json!({"verification_mode": "field_extraction", "json_path": "$", "claimed_value": [{"path": "$.order.discount", "value": "0"}]}), Outcome::Caught, Reason::PathNotFound),
        (json!({"verification_mode": "field_extraction", "json_path": "$.order.items[*].sku", "claimed_value": "[\"A\",\"B\"]"}), Outcome::Pass, Reason::Match),
        (json!({"verification_mode": "range_threshold", "json_path": "$.order.items[*].qty", "claimed_value": 1.5, "range_min": 1, "range_max": 3}), Outcome::Pass, Reason::Match),
        (json!({"verification_mode": "range_threshold", "json_path": "$.order.total", "range_max": 50}), Outcome::Caught, Reason::OutOfRange),
        (json!({"verification_mode": "range_threshold", "json_path": "$.order.status", "range_min": 0}), Outcome::Caught, Reason::NotNumeric),
        (json!({"verification_mode": "presence", "json_path": "$.order.items[?@.sku=='B']", "claimed_value": true}), Outcome::Pass, Reason::Match),
        (json!({"verification_mode": "presence", "json_path": "$.order.refund", "claimed_value": false}), Outcome::Pass, Reason::Match),
        (json!({"verification_mode": "exact", "json_path": "$.order[", "claimed_value": 1}), Outcome::Error, Reason::InvalidPath),
        (json!({"verification_mode": "nonsense_mode", "json_path": "$", "claimed_value": 1}), Outcome::Error, Reason::InvalidClaim),
    ];
    for (index, (mut claim, outcome, reason)) in rows.into_iter().enumerate() {
        claim["action_name"] = json!("get_order");
        let (got_outcome, got_reason, result) = one(claim, &document);
        assert_eq!(
            (got_outcome, got_reason),
            (outcome, reason),
            "row {index}: {result:?}"
        );
        if outcome != Outcome::Pass {
            assert!(
                result
                    .detail
                    .as_deref()
                    .is_some_and(|detail| !detail.is_empty()),
                "row {index} explains itself"
            );
        }
    }
}

#[test]
fn result_reports_claimed_and_actual_with_a_readable_detail() {
    let document = json!({"total": 89.5});
    let (_, _, result) = one(
        json!({"action_name": "a", "verification_mode": "field_extraction", "json_path": "$.total", "claimed_value": "99.00"}),
        &document,
    );
    assert_eq!(result.reason, Reason::ValueMismatch);
    assert_eq!(result.claimed, json!("99.00"));
    assert_eq!(result.actual, Some(json!(89.5)));
    assert_eq!(
        result.detail.as_deref(),
        Some("claimed 99.00, record has 89.5 at $.total")
    );
    let out_of_range = one(json!({"action_name": "a", "verification_mode": "range_threshold", "json_path": "$.total", "range_max": 50}), &document).2;
    assert_eq!(
        out_of_range.detail.as_deref(),
        Some("89.5 at $.total is above the maximum 50")
    );
}

#[test]
fn range_aggregates_reduce_multi_node_results() {
    let document = json!({"prices": [10, 20, 60]});
    let claim = |aggregate: &str, extra: Value| {
        let mut claim = json!({"action_name": "a", "verification_mode": "range_threshold", "json_path": "$.prices[*]", "aggregate": aggregate});
        for (key, value) in extra.as_object().into_iter().flatten() {
            claim[key] = value.clone();
        }
        one(claim, &document)
    };
    let cases = [
        (
            "mean",
            json!({"range_min": 29, "range_max": 31, "claimed_value": 30}),
            Reason::Match,
        ),
        (
            "sum",
            json!({"range_min": 90, "range_max": 90}),
            Reason::Match,
        ),
        ("min", json!({"range_min": 10}), Reason::Match),
        ("max", json!({"range_max": 59}), Reason::OutOfRange),
        (
            "count",
            json!({"range_min": 3, "range_max": 3, "claimed_value": "3"}),
            Reason::Match,
        ),
        ("each", json!({"range_max": 50}), Reason::OutOfRange),
        (
            "each",
            json!({"range_min": 5, "range_max": 60}),
            Reason::Match,
        ),
        (
            "mean",
            json!({"range_max": 100, "claimed_value": 31}),
            Reason::ValueMismatch,
        ),
        (
            "mean",
            json!({"range_max": 100, "claimed_value": 31, "abs_tol": 1.5}),
            Reason::Match,
        ),
        (
            "mean",
            json!({"range_max": 100, "claimed_value": 33, "rel_tol": 0.1}),
            Reason::Match,
        ),
    ];
    for (aggregate, extra, reason) in cases {
        let (_, got, result) = claim(aggregate, extra.clone());
        assert_eq!(got, reason, "{aggregate} {extra}: {result:?}");
    }
    let (_, reason, _) = one(
        json!({"action_name": "a", "verification_mode": "range_threshold", "json_path": "$.x", "range_min": 1}),
        &json!({"x": "12.5"}),
    );
    assert_eq!(reason, Reason::Match, "numeric strings are numbers");
    let (_, reason, _) = one(
        json!({"action_name": "a", "verification_mode": "range_threshold", "json_path": "$.x", "range_min": 0}),
        &json!({"x": true}),
    );
    assert_eq!(reason, Reason::NotNumeric, "booleans are not numbers");
    let (_, reason, _) = one(
        json!({"action_name": "a", "verification_mode": "range_threshold", "json_path": "$.x", "range_min": 9007199254740993u64}),
        &json!({"x": 9007199254740992u64}),
    );
    assert_eq!(
        reason,
        Reason::OutOfRange,
        "a single node compares exactly, even beyond 2^53"
    );
}

#[test]
/// A path that selects one node whose value is an array (`$.stats.daily_totals`) is reduced over the
/// array's elements with the claim's aggregate, as a multi-node result is (SourceryKit averages such an array).
fn single_array_nodes_reduce_over_their_elements() {
    let document =
        json!({"stats": {"daily_totals": [10, 20, 60], "none": [], "mixed": [1, "two"]}});
    let cases = [
        (
            json!({"json_path": "$.stats.daily_totals", "range_min": 29, "range_max": 31, "claimed_value": "30"}),
            Reason::Match,
            None,
        ),
        (
            json!({"json_path": "$.stats.daily_totals", "range_min": 29, "claimed_value": 31}),
            Reason::ValueMismatch,
            None,
        ),
        (
            json!({"json_path": "$.stats.daily_totals", "range_max": 25}),
            Reason::OutOfRange,
            Some("30 at $.stats.daily_totals is above the maximum 25"),
        ),
        (
            json!({"json_path": "$.stats.daily_totals", "aggregate": "each", "range_min": 10, "range_max": 59}),
            Reason::OutOfRange,
            None,
        ),
        (
            json!({"json_path": "$.stats.daily_totals", "aggregate": "sum", "range_min": 90, "range_max": 90}),
            Reason::Match,
            None,
        ),
        (
            json!({"json_path": "$.stats.daily_totals", "aggregate": "count", "range_min": 3, "range_max": 3}),
            Reason::Match,
            None,
        ),
        (
            json!({"json_path": "$.stats.none", "range_min": 0}),
            Reason::NotNumeric,
            Some("the array at $.stats.none holds no numbers"),
        ),
        (
            json!({"json_path": "$.stats.none", "aggregate": "count", "range_max": 0}),
            Reason::Match,
            None,
        ),
        (
            json!({"json_path": "$.stats.mixed", "range_min": 0}),
            Reason::NotNumeric,
            Some("two at $.stats.mixed is not a number"),
        ),
    ];
    for (mut claim, reason, detail) in cases {
        claim["action_name"] = json!("a");
        claim["verification_mode"] = json!("range_threshold");
        let (_, got, result) = one(claim.clone(), &document);
        assert_eq!(got, reason, "{claim}: {result:?}");
        if let Some(detail) = detail {
            assert_eq!(result.detail.as_deref(), Some(detail), "{claim}");
        }
    }
}

#[test]
fn malformed_claims_are_errors_of_that_claim_only() {
    let document = order();
    let invalid = [
        json!({"verification_mode": "exact", "claimed_value": 1}),
        json!({"action_name": "a", "claimed_value": 1}),
        json!({"action_name": "a", "verification_mode": "exact"}),
        json!({"action_name": "a", "verification_mode": "range_threshold", "json_path": "$.order.total"}),
        json!({"action_name": "a", "verification_mode": "range_threshold", "range_min": "low"}),
        json!({"action_name": "a", "verification_mode": "range_threshold", "range_min": 5, "range_max": 1}),
        json!({"action_name": "a", "verification_mode": "range_threshold", "range_min": 1, "aggregate": "median"}),
        json!({"action_name": "a", "verification_mode": "range_threshold", "range_min": 1, "abs_tol": -1}),
        json!({"action_name": "a", "verification_mode": "presence", "claimed_value": "maybe"}),
        json!("not an object"),
    ];
    for claim in invalid {
        let payload = Payload::parse(&json!({"claims": [claim.clone(), {"action_name": "b", "verification_mode": "exact", "json_path": "$.order.id", "claimed_value": 8, "record_id": "r"}], "run_id": "run"})).expect("payload");
        let evaluation = evaluate(&payload, |_| Evidence::Json(&document));
        assert_eq!(
            evaluation.per_claim[0].reason,
            Reason::InvalidClaim,
            "{claim}"
        );
        assert_eq!(evaluation.per_claim[1].reason, Reason::ValueMismatch);
        assert_eq!(
            evaluation.outcome,
            Outcome::Caught,
            "an invalid claim never masks a caught one"
        );
    }
}

#[test]
fn evidence_gates_decide_before_any_comparison() {
    let claim = json!({"action_name": "get_order", "verification_mode": "exact", "json_path": "$.order.id", "claimed_value": 7, "record_id": "r"});
    let cases = [
        (Evidence::Missing, Reason::EvidenceMissing, Outcome::Caught),
        (
            Evidence::Tampered,
            Reason::EvidenceTampered,
            Outcome::Caught,
        ),
        (
            Evidence::Untrusted,
            Reason::UntrustedEndpoint,
            Outcome::Caught,
        ),
        (Evidence::NotJson, Reason::EvidenceNotJson, Outcome::Caught),
        (
            Evidence::Unavailable,
            Reason::StoreUnavailable,
            Outcome::Error,
        ),
    ];
    for (evidence, reason, outcome) in cases {
        let payload = Payload::parse(&json!({"claims": [claim.clone()]})).expect("payload");
        let evaluation = evaluate(&payload, |_| evidence);
        assert_eq!(
            (evaluation.per_claim[0].reason, evaluation.outcome),
            (reason, outcome),
            "{evidence:?}"
        );
    }
    // Each gate's detail, for a claim naming its record and for one found by its action in the run.
    let by_action = json!({"run_id": "run-1", "claims": [{"action_name": "get_order", "verification_mode": "exact", "json_path": "$.order.id", "claimed_value": 7}]});
    let by_record = json!({"claims": [claim.clone()]});
    let details = [
        (&by_record, Evidence::Missing, "record r was not found in this tenant"),
        (&by_action, Evidence::Missing, "no record of action 'get_order' in this run"),
        (&by_record, Evidence::Tampered, "record r fails its integrity check"),
        (
            &by_action,
            Evidence::Tampered,
            "the record of action 'get_order' in this run fails its integrity check",
        ),
        (
            &by_action,
            Evidence::Untrusted,
            "the record of action 'get_order' in this run is not from one of the tenant's trusted endpoints \
             (add its endpoint with POST /api/v1/trusted-endpoints)",
        ),
        (&by_record, Evidence::Unavailable, "the evidence store is unavailable"),
        (
            &by_record,
            Evidence::TooLarge,
            "record r would pass the request's limit on evidence bytes",
        ),
    ];
    for (payload, evidence, detail) in details {
        let payload = Payload::parse(payload).expect("payload");
        let evaluation = evaluate(&payload, |_| evidence);
        assert_eq!(
            evaluation.per_claim[0].detail.as_deref(),
            Some(detail),
            "{evidence:?}"
        );
    }
    let presence =
        json!({"action_name": "ping", "verification_mode": "presence", "record_id": "r"});
    let payload = Payload::parse(&json!({"claims": [presence]})).expect("payload");
    assert_eq!(
        evaluate(&payload, |_| Evidence::NotJson).outcome,
        Outcome::Pass,
        "presence on $ needs no JSON body"
    );
}

#[test]
fn claims_need_a_record_or_a_run() {
    let document = order();
    let claim = json!({"action_name": "get_order", "verification_mode": "presence", "json_path": "$.order"});
    let without_run = Payload::parse(&json!({"claims": [claim.clone()]})).expect("payload");
    let evaluation = evaluate(&without_run, |_| Evidence::Json(&document));
    assert_eq!(evaluation.per_claim[0].reason, Reason::InvalidClaim);
    assert_eq!(
        evaluation.per_claim[0].detail.as_deref(),
        Some("claim has no evidence reference")
    );
    let with_run = Payload::parse(&json!({"run_id": "run-1", "claims": [claim]})).expect("payload");
    let seen = std::cell::RefCell::new(Vec::new());
    let evaluation = evaluate(&with_run, |reference: EvidenceRef<'_>| {
        seen.borrow_mut().push((
            reference.record_id.map(String::from),
            reference.action_name.map(String::from),
        ));
        Evidence::Json(&document)
    });
    assert_eq!(evaluation.outcome, Outcome::Pass);
    assert_eq!(
        seen.into_inner(),
        vec![(None, Some("get_order".to_string()))],
        "looked up by action within the run"
    );
}

#[test]
fn empty_claims_are_an_error_and_oversized_payloads_are_refused() {
    let evaluation = evaluate(
        &Payload::parse(&json!({"claims": []})).expect("payload"),
        |_| Evidence::Missing,
    );
    assert_eq!(evaluation.outcome, Outcome::Error);
    assert_eq!(evaluation.errors, vec!["no_claims".to_string()]);
    let many: Vec<Value> = (0..1001).map(|_| json!({})).collect();
    assert!(Payload::parse(&json!({"claims": many})).is_err());
    assert!(Payload::parse(&json!({"claims": "all"})).is_err());
    assert!(Payload::parse(&json!([])).is_err());
    assert!(Payload::parse(&json!({"claims": [], "run_id": "r".repeat(256)})).is_err());
}

#[test]
fn actual_is_cut_to_four_kib() {
    let big = json!({"blob": "x".repeat(10_000)});
    let (_, reason, result) = one(
        json!({"action_name": "a", "verification_mode": "exact", "json_path": "$.blob", "claimed_value": "y"}),
        &big,
    );
    assert_eq!(reason, Reason::ValueMismatch);
    assert!(result.actual_truncated);
    assert!(result
        .actual
        .as_ref()
        .and_then(Value::as_str)
        .is_some_and(|text| text.len() <= 4096));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "-?[0-9]{1,25}(\\.[0-9]{1,10})?(e-?[0-9]{1,3})?"
                .prop_map(|text| serde_json::from_str(&text).unwrap_or(Value::Null)),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    fn claim() -> impl Strategy<Value = Value> {
        let mode = prop_oneof![
            Just(json!("field_extraction")),
            Just(json!("exact")),
            Just(json!("range_threshold")),
            Just(json!("presence")),
            Just(json!("bogus")),
            Just(Value::Null),
        ];
        let path = prop_oneof![
            Just("$".to_string()),
            "\\$(\\.[a-z]{1,3}|\\[[0-9]\\]|\\[\\*\\]|\\.\\.[a-z]|\\[-1\\]|\\[0:2\\]){0,4}",
            "\\PC{0,10}",
            Just("$[?@.a > 1]".to_string()),
            Just("$..*".to_string()),
        ];
        let aggregate = prop_oneof![
            Just(Value::Null),
            Just(json!("mean")),
            Just(json!("each")),
            Just(json!("count")),
            Just(json!("x"))
        ];
        (mode, path, json_value(), json_value(), json_value(), aggregate, any::<bool>()).prop_map(
            |(mode, path, claimed, min, max, aggregate, with_record)| {
                let mut claim = json!({"action_name": "act", "verification_mode": mode, "json_path": path,
                                       "claimed_value": claimed, "range_min": min, "range_max": max, "aggregate": aggregate});
                if with_record {
                    claim["record_id"] = json!("r");
                }
                claim
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_claim_on_any_document_yields_a_result_with_a_reason(document in json_value(), claims in prop::collection::vec(claim(), 0..5), run in any::<bool>()) {
            let mut payload = json!({"claims": claims});
            if run {
                payload["run_id"] = json!("run");
            }
            let payload = Payload::parse(&payload).expect("object with claims array");
            let evaluation = evaluate(&payload, |_| Evidence::Json(&document));
            prop_assert_eq!(evaluation.per_claim.len(), payload.claims.len());
            for result in &evaluation.per_claim {
                prop_assert_eq!(result.result, result.reason.outcome());
                if result.result != Outcome::Pass {
                    prop_assert!(result.detail.as_deref().is_some_and(|detail| !detail.is_empty()), "{:?}", result);
                }
            }
            prop_assert_eq!(evaluation.outcome, Outcome::overall(evaluation.per_claim.iter().map(|r| r.result)));
        }
    }
}
