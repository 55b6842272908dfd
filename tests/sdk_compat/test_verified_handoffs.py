"""Verified handoffs (docs/api.md decision 12) with the unchanged handoffrail-sdk==0.3.0: it reads, lists,
claims, answers and chains packets that carry a verdict. The SDK's models drop fields they do not know, so the
claims go out the way the README shows: the SDK's packet as a dict, plus `verification`."""

import httpx
import pytest
from handoffrail.sdk import ChainHandoffRequest, PacketBuilder, PacketCreate
from handoffrail.sdk.exceptions import HandoffRailError

ORDER = '{"order": {"id": 7, "status": "shipped", "total": 89.5}}'


@pytest.fixture(scope="module")
def record_id(base_url, admin_key):
    """An order response as imported evidence, from an endpoint the tenant trusts."""
    headers = {"X-API-Key": admin_key}
    url = "https://orders.example.com/v1/orders/7"
    httpx.post(f"{base_url}/trusted-endpoints", headers=headers,
               json={"url": "https://orders.example.com/v1/orders/{id}"}).raise_for_status()
    imported = httpx.post(f"{base_url}/records", headers=headers, json={"log": {"version": "1.2", "entries": [{
        "startedDateTime": "2026-12-07T12:00:00Z", "time": 3,
        "request": {"method": "GET", "url": url, "headers": []},
        "response": {"status": 200, "headers": [], "content": {"mimeType": "application/json", "text": ORDER}},
        "_handoffrail": {"run_id": "sdk-run", "agent_id": "researcher", "action": "get_order"}}]}})
    imported.raise_for_status()
    return imported.json()["ids"][0]


def verified(client, base_url, packet: PacketCreate, total: str, record: str, path: str = "/packets") -> dict:
    """The README's way: the SDK's packet, plus `verification`."""
    verification = {"on_caught": "hold", "claims": [{"action_name": "get_order", "verification_mode": "field_extraction",
                                                     "json_path": "$.order.total", "claimed_value": total,
                                                     "record_id": record}]}
    reply = httpx.post(f"{base_url}{path}", headers={"X-API-Key": client.api_key},
                       json={**packet.to_dict(), "verification": verification})
    assert reply.status_code == 201, reply.text
    return reply.json()


def test_the_sdk_drives_verified_packets(client, base_url, record_id, unique):
    def packet(summary: str) -> PacketCreate:
        return PacketBuilder().from_("researcher", "Researcher").to(unique, "Writer").with_summary(summary).build()

    truthful = verified(client, base_url, packet("bill 89.50"), "89.50", record_id)
    caught = verified(client, base_url, packet("bill 99.00"), "99.00", record_id)
    assert (truthful["verification"]["outcome"], caught["verification"]["outcome"]) == ("PASS", "CAUGHT")

    # Read and listed by the SDK, which ignores the field it does not know.
    held = client.get_packet(caught["id"])
    assert held.status == "awaiting_human"
    assert held.hitl.options == ["Accept anyway", "Send back"]
    listed = client.list_packets(target_agent=unique)
    assert {str(p.id) for p in listed.packets} == {truthful["id"], caught["id"]}

    # The writer claims what is ready; a held handoff waits for its human.
    assert client.claim_packet(truthful["id"], agent_id=unique, agent_name="Writer").status == "claimed"
    with pytest.raises(HandoffRailError) as refused:
        client.claim_packet(caught["id"], agent_id=unique, agent_name="Writer")
    assert refused.value.status_code == 409
    sent_back = client.respond_to_hitl(caught["id"], response="Send back", responded_by="ann")
    assert sent_back.status == "failed"
    events = [event.event_type for event in client.get_history(caught["id"]).events]
    assert events == ["created", "verification_caught", "hitl_responded"]

    # Chains: the SDK's own chain, and a verified one read back by the SDK.
    child = client.chain_handoff(truthful["id"], ChainHandoffRequest.from_dict(packet("follow-up").to_dict()))
    assert str(child.parent_packet_id) == truthful["id"]
    verified_child = verified(client, base_url, packet("bill again"), "89.5", record_id,
                              path=f"/packets/{truthful['id']}/chain")
    assert client.get_packet(verified_child["id"]).status == "created"
    assert verified_child["verification"]["outcome"] == "PASS"
