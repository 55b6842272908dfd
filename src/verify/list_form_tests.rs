//! SourceryKit's list form (docs/evaluator.md "Payload"): each entry checked at its own path in its own record,
//! for `field_extraction` and `range_threshold`, and each entry's verdict reported.

use super::claim::Payload;
use super::evaluate::{evaluate, ClaimResult, Evaluation, Evidence, EvidenceRef};
use super::outcome::{Outcome, Reason};
use serde_json::{json, Value};

fn invoice() -> Value {
    json!({"invoice": {"amount": "1200.00", "currency": "EUR", "lines": [{"qty": 2}, {"qty": 5}]}})
}

fn customer() -> Value {
    json!({"customer": {"tier": "business", "seats": 40}})
}

/// Evaluates `claims` with records `inv` (an invoice) and `cus` (a customer).
fn evaluate_claims(claims: Value) -> Evaluation {
    let (invoice, customer) = (invoice(), customer());
    let resolve = |reference: EvidenceRef<'_>| match reference.record_id {
        Some("inv") => Evidence::Json(&invoice),
        Some("cus") => Evidence::Json(&customer),
        _ => Evidence::Missing,
    };
    let payload = Payload::parse(&json!({"reasoning": "…", "claims": claims})).expect("payload");
    evaluate(&payload, resolve)
}

fn only(claim: Value) -> ClaimResult {
    evaluate_claims(json!([claim])).per_claim[0].clone()
}

fn range(entries: Value) -> Value {
    json!({"action_name": "check", "verification_mode": "range_threshold", "range_min": 10, "range_max": 2000,
           "claimed_value": entries})
}

#[test]
fn sourcerykit_list_form_checks_each_entry_in_its_own_record() {
    let invoice = json!({"invoice": {"amount": "1200.00", "currency": "EUR"}});
    let customer = json!({"customer": {"tier": "business"}});
    let resolve = |reference: EvidenceRef<'_>| match reference.record_id {
        Some("inv") => Evidence::Json(&invoice),
        Some("cus") => Evidence::Json(&customer),
        _ => Evidence::Missing,
    };
    let payload = |tier: &str| {
        Payload::parse(&json!({
            "provably_org_id": "org", "integration_api_key": "secret", "query_ids": ["q1"],
            "reasoning": "the invoice was paid",
            "claims": [{
                "action_name": "check_invoice", "verification_mode": "field_extraction",
                "claimed_value": [
                    {"path": "$.invoice.amount", "value": " 1200.00", "sourcerykit_ref": "inv"},
                    {"path": "$.customer.tier", "value": tier, "sourcerykit_ref": "cus"}
                ]
            }]
        }))
        .expect("payload")
    };
    let passing = evaluate(&payload("business"), resolve);
    assert_eq!(passing.outcome, Outcome::Pass, "{:?}", passing.per_claim);
    assert_eq!(
        passing.per_claim[0].actual,
        Some(json!(["1200.00", "business"]))
    );
    let caught = evaluate(&payload("free"), resolve);
    assert_eq!(caught.per_claim[0].reason, Reason::ValueMismatch);
    assert_eq!(
        caught.per_claim[0].detail.as_deref(),
        Some("claimed free, record has business at $.customer.tier")
    );
    assert_eq!(
        payload("x").answer.as_deref(),
        Some("the invoice was paid"),
        "reasoning is the answer's alias"
    );
    // A string in the record is compared as text: "1200" does not state "1200.00".
    let text = json!({"amount": "1200.00"});
    let payload = Payload::parse(
        &json!({"claims": [{"action_name": "a", "verification_mode": "field_extraction",
        "record_id": "r", "json_path": "$.amount", "claimed_value": "1200"}]}),
    )
    .expect("payload");
    let evaluation = evaluate(&payload, |_| Evidence::Json(&text));
    assert_eq!(evaluation.per_claim[0].reason, Reason::ValueMismatch);
}

#[test]
fn list_form_range_threshold_passes_when_every_entry_matches_within_the_bounds() {
    let result = only(range(json!([
        {"path": "$.invoice.amount", "value": "1200.00", "sourcerykit_ref": "inv"},
        {"path": "$.customer.seats", "value": 40, "sourcerykit_ref": "cus"}
    ])));
    assert_eq!(
        (result.result, result.reason),
        (Outcome::Pass, Reason::Match),
        "{result:?}"
    );
    let entries: Vec<_> = result
        .entries
        .iter()
        .map(|entry| {
            (
                entry.json_path.as_str(),
                entry.record_id.as_deref(),
                entry.result,
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("$.invoice.amount", Some("inv"), Outcome::Pass),
            ("$.customer.seats", Some("cus"), Outcome::Pass)
        ]
    );
}

#[test]
fn list_form_range_threshold_catches_a_wrong_value_or_one_out_of_bounds() {
    let wrong = only(range(json!([
        {"path": "$.invoice.amount", "value": 1200, "sourcerykit_ref": "inv"},
        {"path": "$.customer.seats", "value": 45, "sourcerykit_ref": "cus"}
    ])));
    assert_eq!(wrong.reason, Reason::ValueMismatch, "{wrong:?}");
    assert_eq!(
        wrong.detail.as_deref(),
        Some("claimed 45, record has 40 at $.customer.seats")
    );
    // The claim is shown at the entry that decided it.
    assert_eq!(
        (wrong.json_path.as_str(), wrong.record_id.as_deref()),
        ("$.customer.seats", Some("cus"))
    );
    assert_eq!(wrong.entries[0].result, Outcome::Pass);
    assert_eq!(wrong.entries[1].reason, Reason::ValueMismatch);
    assert_eq!(wrong.entries[1].actual, Some(json!(40)));

    // The value is right, but the record's amount lies outside the bounds.
    let outside = only(
        json!({"action_name": "check", "verification_mode": "range_threshold", "range_max": 1000,
        "claimed_value": [{"path": "$.invoice.amount", "value": "1200.00", "sourcerykit_ref": "inv"}]}),
    );
    assert_eq!(outside.reason, Reason::OutOfRange, "{outside:?}");
    assert_eq!(
        outside.detail.as_deref(),
        Some("1200 at $.invoice.amount is above the maximum 1000")
    );
    assert_eq!(outside.json_path, "$.invoice.amount");
}

#[test]
fn list_form_range_threshold_entries_take_the_claims_aggregate() {
    let each = |aggregate: &str, value: u32| {
        let mut claim =
            range(json!([{"path": "$.invoice.lines[*].qty", "value": value, "ref": "inv"}]));
        claim["aggregate"] = json!(aggregate);
        claim["range_min"] = json!(1);
        only(claim).reason
    };
    assert_eq!(each("sum", 7), Reason::Match);
    assert_eq!(each("max", 5), Reason::Match);
    assert_eq!(each("min", 5), Reason::ValueMismatch);
}

#[test]
fn list_form_range_threshold_refuses_an_entry_that_is_not_a_number() {
    let result = only(range(json!([
        {"path": "$.customer.tier", "value": "business", "sourcerykit_ref": "cus"}
    ])));
    assert_eq!(result.reason, Reason::InvalidClaim);
    assert_eq!(
        result.detail.as_deref(),
        Some("entry $.customer.tier: its value must be a number for range_threshold")
    );
}

#[test]
fn list_form_entries_report_a_missing_record_each() {
    let result = only(
        json!({"action_name": "check", "verification_mode": "field_extraction", "claimed_value": [
            {"path": "$.invoice.currency", "value": "EUR", "sourcerykit_ref": "inv"},
            {"path": "$.order.id", "value": 7, "sourcerykit_ref": "gone"}
        ]}),
    );
    assert_eq!(result.reason, Reason::EvidenceMissing);
    assert_eq!(result.record_id.as_deref(), Some("gone"));
    assert_eq!(
        result.entries[1].detail.as_deref(),
        Some("record gone was not found in this tenant")
    );
    assert_eq!(result.entries[0].actual, Some(json!("EUR")));
}

#[test]
fn a_claim_level_path_must_select_something_in_each_entrys_record() {
    let scoped = |path: &str| {
        only(
            json!({"action_name": "check", "verification_mode": "field_extraction", "json_path": path,
            "claimed_value": [{"path": "$.invoice.currency", "value": "EUR", "sourcerykit_ref": "inv"}]}),
        )
    };
    assert_eq!(scoped("$.invoice").reason, Reason::Match);
    let caught = scoped("$.refund");
    assert_eq!(caught.reason, Reason::PathNotFound);
    assert_eq!(caught.detail.as_deref(), Some("nothing at $.refund"));
}
