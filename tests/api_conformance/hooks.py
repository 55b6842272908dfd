"""Schemathesis hooks for scripts/api-conformance.sh."""

import schemathesis

# Packet creation with a `schema_id` validates the context against the JSON Schema of that name registered in the
# tenant; a name that is not registered is 422 "Schema '…' not found" (the SDK contract). Which names exist is
# state, not shape, so packets sent here name none (in every phase, hence at the call rather than at generation),
# and the registry is exercised in a run of its own.
PACKET_CREATION = ("/api/v1/packets", "/api/v1/packets/{packet_id}/chain")


# A verified handoff whose claims are CAUGHT or ERROR under the policy `reject` is refused with 422 and the verdict
# (docs/api.md decision 12). Whether claims verify depends on the evidence stored, not on the request's shape, so
# packets sent here flag such a verdict instead (tests/integration/verified_handoffs.rs covers `reject`).
REFUSING_POLICIES = ("on_caught", "on_error")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.operation.path in PACKET_CREATION and isinstance(case.body, dict):
        if isinstance(case.body.get("schema_id"), str):
            case.body = {**case.body, "schema_id": None}
        verification = case.body.get("verification")
        if isinstance(verification, dict) and any(verification.get(key) == "reject" for key in REFUSING_POLICIES):
            case.body = {**case.body, "verification": {
                **verification, **{key: "flag" for key in REFUSING_POLICIES if verification.get(key) == "reject"}}}
