"""A verified handoff between two scripted agents (plain Python, no model), run twice: once truthful, once
hallucinating.

The researcher reads an order from a JSON API through HandoffRail's proxy (tagging its run and the action), then
hands the order to the writer with the values it relies on as claims. The server checks the claims against the
recorded response before the packet exists: the truthful handoff is created as usual; the hallucinated one
(the researcher misstates the total) is held for a human. The writer, using the packet SDK, claims only what is
ready for it — a held packet cannot be claimed before a human answers.

    pip install ./clients/python handoffrail-sdk==0.3.0
    HANDOFFRAIL_URL=http://127.0.0.1:8080/api/v1 HANDOFFRAIL_API_KEY=hr_... HANDOFFRAIL_PROXY=127.0.0.1:8081 \\
    ORDERS_API=https://localhost:9443 python examples/verified-handoff/handoff.py

(`ORDERS_API` is any API serving `/v1/orders/ord_8d1f2c`; the repository's `scripts/stand-in-api.py` does.)
"""

import os

from handoffrail.sdk import HandoffRailClient, PacketBuilder
from handoffrail.sdk.exceptions import HandoffRailError

from handoffrail_client import AgentResponse, ClaimedValue, Client, build_handoff_payload

ORDERS_API = os.environ["ORDERS_API"]


def researcher(hr: Client, hallucinate: bool) -> dict:
    """Reads the order through the proxy and hands it to the writer, claiming the values its summary states."""
    with hr.tool_session("researcher") as tools:
        with tools.action("get_order") as call, tools.httpx(timeout=10) as http:
            order = http.get(f"{ORDERS_API}/v1/orders/ord_8d1f2c").json()
        total = round(order["total"] * 10, 2) if hallucinate else order["total"]
        answer = AgentResponse(
            reasoning=f"Order {order['order_id']} has {order['status']}; bill {total} {order['currency']}.",
            claimed_values=[
                ClaimedValue(path="$.status", value=order["status"], ref=call.record_id),
                ClaimedValue(path="$.total", value=str(total), ref=call.record_id),
            ],
        )
        claims = build_handoff_payload(
            {"reasoning": answer.reasoning,
             "claims": [{"action_name": "get_order", "claimed_value": answer.claimed_values,
                         "verification_mode": "field_extraction"}]},
            run_id=tools.run_id,
            agent_id="researcher",
        )
    packet = (
        PacketBuilder()
        .from_("researcher", "Researcher")
        .to("writer", "Writer")
        .with_summary(answer.reasoning)
        .build()
    )
    return hr.create_packet(packet, claims, on_caught="hold")


def writer(sdk: HandoffRailClient, packet_id: str) -> str:
    """Claims a packet handed to the writer if it may: what happened, in words."""
    try:
        claimed = sdk.claim_packet(packet_id, agent_id="writer", agent_name="Writer")
    except HandoffRailError as refused:
        return f"the writer may not claim it ({getattr(refused, 'status_code', '?')}: {refused})"
    return f"claimed by the writer ({claimed.status})"


def describe(packet: dict) -> str:
    verification = packet["verification"]
    not_passed = [
        f"{claim['reason']}: {claim.get('detail', '')}"
        for claim in verification["per_claim"] if claim["result"] != "PASS"
    ]
    return f"{verification['outcome']} {not_passed if not_passed else ''}".strip()


def main() -> None:
    with Client() as hr, HandoffRailClient(base_url=hr.base_url, api_key=hr.api_key) as sdk:
        hr.trust(f"{ORDERS_API}/v1/orders/{{id}}", ["GET"])
        for name, hallucinate in [("truthful", False), ("hallucinated", True)]:
            packet = researcher(hr, hallucinate)
            print(f"{name} handoff: verdict {describe(packet)}; status {packet['status']}")
            print(f"  {writer(sdk, packet['id'])}")
            print(f"  now {sdk.get_packet(packet['id']).status}")
            if packet["hitl"]:
                print(f"  waiting for a human: {packet['hitl']['reason']} {packet['hitl']['options']}")


if __name__ == "__main__":
    main()
