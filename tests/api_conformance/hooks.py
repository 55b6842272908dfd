"""Schemathesis hooks for scripts/api-conformance.sh."""

import schemathesis

# Packet creation with a `schema_id` validates the context against the JSON Schema of that name registered in the
# tenant; a name that is not registered is 422 "Schema '…' not found" (the SDK contract). Which names exist is
# state, not shape, so packets sent here name none (in every phase, hence at the call rather than at generation),
# and the registry is exercised in a run of its own.
PACKET_CREATION = ("/api/v1/packets", "/api/v1/packets/{packet_id}/chain")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.operation.path in PACKET_CREATION and isinstance(case.body, dict):
        if isinstance(case.body.get("schema_id"), str):
            case.body = {**case.body, "schema_id": None}
