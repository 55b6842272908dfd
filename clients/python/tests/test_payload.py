"""The agent output type and the payload builder, without a server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from handoffrail_client import AgentResponse, ClaimedValue, build_handoff_payload


def walk(schema: Any) -> list[dict[str, Any]]:
    """Every object schema in `schema`, definitions included."""
    found: list[dict[str, Any]] = []
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            found.append(schema)
        for value in schema.values():
            found.extend(walk(value))
    elif isinstance(schema, list):
        for value in schema:
            found.extend(walk(value))
    return found


def test_the_agent_response_schema_is_strict_structured_output() -> None:
    schema = AgentResponse.model_json_schema()
    objects = walk(schema)
    assert len(objects) == 2, "the response and a claimed value"
    for entry in objects:
        # What strict modes (OpenAI's json_schema strict, the Agents SDK's output_type) require.
        assert entry["additionalProperties"] is False
        assert sorted(entry["required"]) == sorted(entry["properties"])
    assert sorted(schema["$defs"]["ClaimedValue"]["properties"]) == ["path", "ref", "value"]
    assert AgentResponse.response_format()["json_schema"] == {
        "name": "agent_response",
        "schema": schema,
        "strict": True,
    }


def test_a_model_answer_parses_with_sourcerykit_names_too() -> None:
    answer = AgentResponse.model_validate_json(
        '{"reasoning": "It is 7.3 °C.", "claimed_values": ['
        '{"path": "$.current.temperature_2m", "value": "7.3", "sourcerykit_ref": "r1"},'
        '{"path": "$.latitude", "value": "51.5", "ref": "r1"}]}'
    )
    assert [value.ref for value in answer.claimed_values] == ["r1", "r1"]
    with pytest.raises(ValueError):
        AgentResponse.model_validate({"reasoning": "x", "claimed_values": [{"path": "$.a", "value": "1"}]})


def test_the_payload_carries_the_agents_claimed_values_as_the_list_form() -> None:
    run = uuid.uuid4()
    answer = AgentResponse(
        reasoning="It is 7.3 °C in London.",
        claimed_values=[ClaimedValue(path="$.current.temperature_2m", value="7.3", ref="r1")],
    )
    payload = build_handoff_payload(
        {
            "reasoning": answer.reasoning,
            "claims": [
                {"action_name": "get_weather", "claimed_value": answer.claimed_values,
                 "verification_mode": "field_extraction"},
                {"action_name": "get_weather", "verification_mode": "range_threshold", "json_path": "$.latitude",
                 "range_min": 51, "range_max": 52, "ref": "r1"},
            ],
        },
        run_id=run,
        agent_id="demo-agent",
    )
    assert payload == {
        "answer": "It is 7.3 °C in London.",
        "run_id": str(run),
        "agent_id": "demo-agent",
        "claims": [
            {"action_name": "get_weather", "verification_mode": "field_extraction",
             "claimed_value": [{"path": "$.current.temperature_2m", "value": "7.3", "ref": "r1"}]},
            {"action_name": "get_weather", "verification_mode": "range_threshold", "json_path": "$.latitude",
             "range_min": 51, "range_max": 52, "record_id": "r1"},
        ],
    }


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ([], "at least one claim"),
        ([{"verification_mode": "exact"}], "claims[0]: action_name is required"),
        ([{"action_name": "a", "verification_mode": "verbatim"}], "claims[0]: verification_mode must be one of"),
        ([{"action_name": "a", "verification_mode": "exact"}, {"action_name": "a", "verification_mode": "exact",
          "claimed_vaule": 1}], "claims[1]: the evaluator does not read 'claimed_vaule'"),
        (["get_order"], "claims[0]: a claim is a mapping"),
    ],
)
def test_a_claim_that_cannot_be_sent_is_named(claims: list[Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_handoff_payload({"claims": claims})
