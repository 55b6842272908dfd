"""Building the evaluator's payload from what an agent said (docs/evaluator.md, Payload).

`build_handoff_payload` takes SourceryKit's `payload_data` shape — `reasoning` (or `answer`) and `claims`, each
claim with `action_name`, `claimed_value`, `verification_mode` and the mode's options — and returns the JSON
payload `POST /api/v1/evaluations` reads. `claimed_value` may be an agent's `claimed_values` (a list of
`ClaimedValue`), which becomes the list form with each entry's `ref`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from .models import VERIFICATION_MODES

_CLAIM_FIELDS = (
    "action_name",
    "verification_mode",
    "claimed_value",
    "json_path",
    "record_id",
    "range_min",
    "range_max",
    "aggregate",
    "abs_tol",
    "rel_tol",
)
# SourceryKit's names for a claim's record id.
_RECORD_ID_ALIASES = ("ref", "call_ref", "query_record_id", "sourcerykit_ref")


def build_handoff_payload(
    payload_data: Mapping[str, Any],
    *,
    run_id: str | uuid.UUID | None = None,
    agent_id: str | None = None,
) -> dict[str, Any]:
    """The evaluation payload for `payload_data`, tagged with the run and agent whose calls hold the evidence.

    Raises `ValueError` naming the claim and field when a claim cannot be sent: no claims, a claim without an
    `action_name`, an unknown `verification_mode`, or a field the evaluator does not read.
    """
    claims = payload_data.get("claims")
    if not isinstance(claims, Sequence) or isinstance(claims, (str, bytes)) or not claims:
        raise ValueError("claims: at least one claim is needed (an evaluation of nothing is an ERROR)")
    payload: dict[str, Any] = {"claims": [_claim(index, claim) for index, claim in enumerate(claims)]}
    answer = payload_data.get("answer", payload_data.get("reasoning"))
    if answer is not None:
        payload["answer"] = str(answer)
    if run_id is not None:
        payload["run_id"] = str(run_id)
    if agent_id is not None:
        payload["agent_id"] = agent_id
    return payload


def _claim(index: int, claim: Any) -> dict[str, Any]:
    if not isinstance(claim, Mapping):
        raise ValueError(f"claims[{index}]: a claim is a mapping, not {type(claim).__name__}")
    action = claim.get("action_name")
    if not isinstance(action, str) or not action:
        raise ValueError(f"claims[{index}]: action_name is required")
    mode = claim.get("verification_mode")
    if mode not in VERIFICATION_MODES:
        raise ValueError(
            f"claims[{index}]: verification_mode must be one of {', '.join(VERIFICATION_MODES)} (got {mode!r})"
        )
    built: dict[str, Any] = {}
    for key, value in claim.items():
        if key in _RECORD_ID_ALIASES:
            key = "record_id"
        elif key not in _CLAIM_FIELDS:
            raise ValueError(f"claims[{index}]: the evaluator does not read {key!r}")
        built[key] = _plain(value)
    return built


def _plain(value: Any) -> Any:
    """Pydantic models (an agent's `ClaimedValue`s) as the JSON the evaluator reads, recursively."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_plain(item) for item in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
