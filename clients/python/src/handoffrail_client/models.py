"""What an agent says and what the evaluator answers (docs/evaluator.md: Payload, Result).

`AgentResponse` is the agent's structured output: its reasoning and the values it claims to have read, each with
the JSONPath it read it at and the id of the record that holds the response (the proxy's
`X-HandoffRail-Record`). Bind it as the agent's output type (`output_type=AgentResponse` in the OpenAI Agents
SDK, `response_format=AgentResponse` in LangChain, `AgentResponse.response_format()` for a raw OpenAI call) and
pass `claimed_values` straight into a claim's `claimed_value`.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

Outcome = Literal["PASS", "CAUGHT", "ERROR"]
Policy = Literal["hold", "reject", "flag"]
VerificationMode = Literal["field_extraction", "exact", "range_threshold", "presence"]
VERIFICATION_MODES: tuple[VerificationMode, ...] = ("field_extraction", "exact", "range_threshold", "presence")


class ClaimedValue(BaseModel):
    """One value the agent read: where (`path`), what (`value`, as text) and in which response (`ref`)."""

    # Every field required and nothing else allowed: the schema strict structured-output modes demand.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    path: str = Field(
        description="RFC 9535 JSONPath into the tool's JSON response where the value was read, e.g. '$.current.temperature_2m'."
    )
    value: str = Field(description="The value exactly as the tool's response gave it, written as a string.")
    ref: str = Field(
        validation_alias=AliasChoices("ref", "sourcerykit_ref", "record_id"),
        description=(
            "The record id of the tool call the value came from, copied exactly from the tool's result "
            "(its handoffrail_ref); each call has its own."
        ),
    )


class AgentResponse(BaseModel):
    """The agent's answer with the values it claims: the structured output type of a verifiable agent."""

    model_config = ConfigDict(extra="forbid")

    reasoning: str = Field(description="The answer to the user, in words.")
    claimed_values: list[ClaimedValue] = Field(
        description=(
            "Every value from a tool's response that the answer relies on: its JSONPath, the value as a string, "
            "and the ref of the tool call it came from."
        )
    )

    @classmethod
    def response_format(cls, name: str = "agent_response") -> dict[str, Any]:
        """OpenAI's `response_format` for this type (strict JSON schema), for a call without a framework."""
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": cls.model_json_schema(), "strict": True},
        }


# "pass" is a keyword, so the functional form names the fields.
CountsByResult = TypedDict("CountsByResult", {"pass": int, "caught": int, "error": int})


class EntryResult(TypedDict, total=False):
    """One entry of a list-form claim."""

    json_path: str
    record_id: str | None
    result: Outcome
    reason: str
    claimed: Any
    actual: Any
    actual_truncated: bool
    detail: str


class ClaimResult(EntryResult, total=False):
    """The verdict on one claim, in the payload's order: an entry's fields, and which claim it is."""

    index: int
    action_name: str
    verification_mode: str
    entries: list[EntryResult]


class Verdict(TypedDict, total=False):
    """What `evaluate` returns: SourceryKit's `{"outcome", "per_claim", "errors"}`, plus the stored evaluation's
    `id`, `counts`, `run_id`, `agent_id`, `created_at` and `duration_ms`."""

    outcome: Outcome
    per_claim: list[ClaimResult]
    errors: list[str]
    id: str
    run_id: str | None
    agent_id: str | None
    counts: CountsByResult
    created_at: str
    duration_ms: float
