"""The clients against a running HandoffRail: tool calls through the proxy, their records, verdicts, errors."""

from __future__ import annotations

import asyncio
import copy
import os
import stat
from typing import Any

import pytest

from conftest import Server, free_port
from handoffrail_client import (
    AgentResponse,
    ApiError,
    AsyncClient,
    ClaimedValue,
    Client,
    Policy,
    Unavailable,
    build_handoff_payload,
    record_id,
)


@pytest.fixture
def client(server: Server) -> Client:
    hr = Client(server.url, server.api_key)
    hr.trust(f"{server.upstream}/v1/{{rest:path}}", ["GET"])
    return hr


def test_requests_and_httpx_calls_are_recorded_under_run_and_action(server: Server, client: Client) -> None:
    with client.tool_session("order-agent", proxy=server.proxy) as tools:
        with tools.action("get_order") as order_call:
            order = tools.requests().get(f"{server.upstream}/v1/orders/ord_8d1f2c", timeout=10)
        with tools.action("get_stock") as stock_call, tools.httpx(timeout=10) as http:
            stock = http.get(f"{server.upstream}/v1/stock/SKU-00003")
        with tools.httpx(timeout=10) as http:
            untagged = http.get(f"{server.upstream}/v1/stock/SKU-00003")

        assert (order.json()["status"], stock.json()["available"]) == ("shipped", 41)
        assert order_call.record_ids == [record_id(order)]
        assert stock_call.record_ids == [record_id(stock)]
        assert tools.record_ids == [record_id(order), record_id(stock), record_id(untagged)]
        assert len(set(tools.record_ids)) == 3
        for call_id, action in [(order_call.record_id, "get_order"), (stock_call.record_id, "get_stock"),
                                (tools.record_ids[2], None)]:
            # Read at once: the server waits for an id it just handed out.
            record = client.get_record(call_id)
            assert (record["run_id"], record["agent_id"], record["action"], record["status"]) == (
                tools.run_id, "order-agent", action, 200)
            assert record["signature_valid"] is True and record["trusted"] is True
            assert not any(header["name"].lower().startswith("x-handoffrail")
                           for header in record["request_headers"]), "the tags are not forwarded"
        assert [record["id"] for record in client.list_records(run_id=tools.run_id, action="get_stock")] == [
            stock_call.record_id]

        ca_file = tools.ca_file()
        assert stat.S_IMODE(os.stat(ca_file).st_mode) == 0o600
    assert not os.path.exists(ca_file), "closing the session removes the CA file"


def test_an_action_without_calls_has_no_record_id(server: Server, client: Client) -> None:
    tools = client.tool_session("order-agent", proxy=server.proxy)
    with tools.action("nothing") as call:
        pass
    with pytest.raises(LookupError, match="'nothing' made no call"):
        call.record_id


async def test_concurrent_tasks_each_collect_their_own_calls(server: Server, client: Client) -> None:
    async with AsyncClient(server.url, server.api_key) as hr:
        tools = await hr.tool_session("stock-agent", proxy=server.proxy)

        async def act(name: str, path: str) -> list[str]:
            async with tools.action(name) as call, tools.async_httpx(timeout=10) as http:
                for _ in range(3):
                    (await http.get(f"{server.upstream}{path}")).raise_for_status()
                    await asyncio.sleep(0)
            return call.record_ids

        orders, stock = await asyncio.gather(act("get_order", "/v1/orders/ord_8d1f2c"),
                                             act("get_stock", "/v1/stock/SKU-00003"))
        assert (len(orders), len(stock), len(set(orders + stock))) == (3, 3, 6)
        for ids, action in [(orders, "get_order"), (stock, "get_stock")]:
            for call_id in ids:
                assert (await hr.get_record(call_id))["action"] == action


def weather_answer(temperature: str, ref: str) -> AgentResponse:
    return AgentResponse(
        reasoning=f"It is {temperature} °C in London.",
        claimed_values=[ClaimedValue(path="$.current.temperature_2m", value=temperature, ref=ref),
                        ClaimedValue(path="$.current_units.temperature_2m", value="°C", ref=ref)],
    )


def verdict_for(client: Client, server: Server, answer_for: Any) -> dict[str, Any]:
    with client.tool_session("weather-agent", proxy=server.proxy) as tools:
        with tools.action("get_weather") as call, tools.httpx(timeout=10) as http:
            http.get(f"{server.upstream}/v1/forecast",
                     params={"latitude": 51.5074, "longitude": -0.1278, "current": "temperature_2m"})
        answer = answer_for(call.record_id)
        payload = build_handoff_payload(
            {"reasoning": answer.reasoning,
             "claims": [{"action_name": "get_weather", "claimed_value": answer.claimed_values,
                         "verification_mode": "field_extraction"}]},
            run_id=tools.run_id, agent_id="weather-agent")
        return dict(client.evaluate(payload))


def test_a_truthful_answer_passes_and_a_changed_value_is_caught(server: Server, client: Client) -> None:
    passed = verdict_for(client, server, lambda ref: weather_answer("7.3", ref))
    assert (passed["outcome"], passed["errors"], passed["counts"]) == ("PASS", [], {"pass": 1, "caught": 0, "error": 0})
    assert [entry["result"] for entry in passed["per_claim"][0]["entries"]] == ["PASS", "PASS"]
    assert client.get_evaluation(passed["id"])["outcome"] == "PASS"

    caught = verdict_for(client, server, lambda ref: weather_answer("9.9", ref))
    claim = caught["per_claim"][0]
    assert (caught["outcome"], claim["result"], claim["reason"]) == ("CAUGHT", "CAUGHT", "value_mismatch")
    assert (claim["json_path"], claim["actual"]) == ("$.current.temperature_2m", 7.3)


def test_a_ref_to_no_call_is_caught(server: Server, client: Client) -> None:
    caught = verdict_for(client, server, lambda ref: weather_answer("7.3", "0190b8a4-0000-7000-8000-000000000000"))
    assert (caught["outcome"], caught["per_claim"][0]["reason"]) == ("CAUGHT", "evidence_missing")


def test_trusting_an_endpoint_twice_keeps_one(server: Server, client: Client) -> None:
    url = f"{server.upstream}/v2/{{rest:path}}"
    first, again = client.trust(url), client.trust(url)
    assert first["id"] == again["id"]
    assert client.trust(url, ["GET"])["id"] != first["id"], "other methods are another endpoint"


def test_refusals_and_outages_raise_and_are_never_verdicts(server: Server) -> None:
    payload = {"claims": [{"action_name": "a", "verification_mode": "presence", "record_id": "x"}]}
    with pytest.raises(ApiError) as refused:
        Client(server.url, "hr_" + "x" * 43).evaluate(payload)
    assert refused.value.status == 401
    with pytest.raises(ApiError) as invalid:
        Client(server.url, server.api_key).evaluate({"claims": "get_order"})
    assert invalid.value.status == 422
    with pytest.raises(Unavailable):
        Client(f"http://127.0.0.1:{free_port()}/api/v1", server.api_key).evaluate(payload)


async def test_the_async_client_evaluates_like_the_sync_one(server: Server, client: Client) -> None:
    payload = copy.deepcopy({"claims": [{"action_name": "a", "verification_mode": "presence",
                                         "record_id": "0190b8a4-0000-7000-8000-000000000000"}]})
    async with AsyncClient(server.url, server.api_key) as hr:
        verdict = await hr.evaluate(payload)
    assert (verdict["outcome"], verdict["per_claim"][0]["reason"]) == (
        client.evaluate(payload)["outcome"], "evidence_missing")
    with pytest.raises(Unavailable):
        async with AsyncClient(f"http://127.0.0.1:{free_port()}/api/v1", server.api_key) as down:
            await down.evaluate(payload)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    monkeypatch.setenv("HANDOFFRAIL_URL", server.url)
    monkeypatch.setenv("HANDOFFRAIL_API_KEY", server.api_key)
    monkeypatch.setenv("HANDOFFRAIL_PROXY", server.proxy)
    with Client() as hr:
        assert hr.ca_pem().startswith("-----BEGIN CERTIFICATE-----")
        assert hr.tool_session("a").proxy_url.endswith(f"@{server.proxy}")
    monkeypatch.delenv("HANDOFFRAIL_API_KEY")
    with pytest.raises(ValueError, match="HANDOFFRAIL_API_KEY"):
        Client()


def test_verified_packets_carry_their_verdict_and_follow_the_policy(server: Server, client: Client) -> None:
    from handoffrail.sdk import HandoffRailClient, PacketBuilder

    def handoff(temperature: str, policy: Policy) -> dict[str, Any]:
        with client.tool_session("weather-agent", proxy=server.proxy) as tools:
            with tools.action("get_weather") as call, tools.httpx(timeout=10) as http:
                http.get(f"{server.upstream}/v1/forecast", params={"latitude": 51.5, "current": "temperature_2m"})
            answer = weather_answer(temperature, call.record_id)
            claims = build_handoff_payload(
                {"reasoning": answer.reasoning,
                 "claims": [{"action_name": "get_weather", "claimed_value": answer.claimed_values,
                             "verification_mode": "field_extraction"}]},
                run_id=tools.run_id, agent_id="weather-agent")
        packet = PacketBuilder().from_("weather-agent", "Weather").to("writer", "Writer").with_summary(
            answer.reasoning).build()
        return client.create_packet(packet, claims, on_caught=policy)

    truthful = handoff("7.3", "hold")
    assert (truthful["status"], truthful["verification"]["outcome"]) == ("created", "PASS")
    held = handoff("9.9", "hold")
    assert (held["status"], held["verification"]["outcome"], held["hitl"]["options"]) == (
        "awaiting_human", "CAUGHT", ["Accept anyway", "Send back"])
    with pytest.raises(ApiError) as rejected:
        handoff("9.9", "reject")
    assert rejected.value.status == 422
    assert rejected.value.body["verification"]["policy"] == "reject"

    # The packet SDK reads verified packets unchanged.
    with HandoffRailClient(base_url=server.url, api_key=server.api_key) as sdk:
        assert sdk.get_packet(held["id"]).status == "awaiting_human"
    again = client.verify_packet(held["id"])
    assert again["verification"]["outcome"] == "CAUGHT"
    assert again["verification"]["evaluation_id"] != held["verification"]["evaluation_id"]
    assert client.get_packet(held["id"])["verification"] == again["verification"]
