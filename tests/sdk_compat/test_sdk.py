"""The unchanged SDK against our server: every packet method it offers, and the exception each error maps to."""

import asyncio
import uuid

import httpx

import pytest
from handoffrail.sdk import (
    AsyncHandoffRailClient,
    AuthenticationError,
    ChainBuilder,
    HandoffRailClient,
    NotFoundError,
    PacketBuilder,
    RateLimitError,
    PacketUpdate,
    ServerError,
    ValidationError,
)
from handoffrail.sdk.models import Decision, PacketContext


def full_packet(tag: str, hitl: bool = False):
    builder = (
        PacketBuilder()
        .from_("sales-01", "SalesBot", framework="langchain", version="2.1")
        .to("billing-01", "BillingBot", framework="crewai")
        .with_summary(f"Customer wants Business tier ({tag})")
        .with_priority("high")
        .with_tags(["upgrade", tag])
        .with_conversation([{"role": "user", "content": "I want to upgrade"}, {"role": "agent", "content": "Sure"}])
        .with_artifacts([{"key": "quote", "value": {"amount": 1200, "currency": "EUR"}, "content_type": "application/json"}])
        .with_custom({"account_id": 42, "ratio": 0.25})
        .with_decision("Proceed", rationale="Customer is eligible", alternatives=["Wait"])
        .with_decision("Discount")
        .with_action("Process payment", assignee="billing-01", priority="high")
        .with_dependency("stripe", type="api", description="Payment gateway")
    )
    if hitl:
        builder = builder.with_hitl(reason="High-value upgrade", question="Approve?", options=["yes", "no"])
    return builder.build()


def claimed(client, tag):
    packet = client.create_packet(full_packet(tag))
    return client.claim_packet(packet.id, agent_id="billing-01", agent_name="BillingBot")


def test_builder_packet_round_trips_every_section(client, unique):
    packet = client.create_packet(full_packet(unique))
    assert packet.status == "created"
    assert packet.version == "1.0.0"
    assert packet.metadata.source_agent.version == "2.1"
    assert packet.metadata.target_agent.framework == "crewai"
    assert packet.metadata.priority == "high"
    assert packet.metadata.tags == ["upgrade", unique]
    assert [entry.role for entry in packet.context.conversation_state] == ["user", "agent"]
    assert packet.context.artifacts[0].value == {"amount": 1200, "currency": "EUR"}
    assert packet.context.custom == {"account_id": 42, "ratio": 0.25}
    assert [d.decision for d in packet.decisions] == ["Proceed", "Discount"]
    assert packet.decisions[1].rationale == ""
    assert packet.actions.pending[0].assignee == "billing-01"
    assert packet.dependencies[0].description == "Payment gateway"
    assert packet.hitl is None
    fetched = client.get_packet(packet.id)
    assert fetched.model_dump() == packet.model_dump()


def test_list_filters_and_cursor_pagination(client, unique):
    ids = [client.create_packet(full_packet(unique)).id for _ in range(5)]
    other = PacketBuilder().from_("x", "X").to("y", "Y").with_summary("other").with_tags([unique]).build()
    client.create_packet(other)
    page = client.list_packets(tags=f"upgrade,{unique}", limit=2)
    assert page.total == 5 and page.limit == 2 and len(page.packets) == 2
    seen = [p.id for p in page.packets]
    while page.next_cursor:
        page = client.list_packets(tags=f"upgrade,{unique}", limit=2, cursor=page.next_cursor)
        seen += [p.id for p in page.packets]
    assert seen == list(reversed(ids))
    assert client.list_packets(tags=unique, source_agent="x").total == 1
    assert client.list_packets(tags=unique, priority="high", status="created,claimed").total == 5
    offset_page = client.list_packets(tags=unique, limit=3, offset=3)
    assert offset_page.offset == 3 and len(offset_page.packets) == 3
    # A list, as the SDK's signature allows: httpx sends `tags` once per item, meaning all of them.
    assert client.list_packets(tags=["upgrade", unique]).total == 5
    assert client.list_packets(tags=[unique, "no-such-tag"]).total == 0


def test_claim_update_and_complete(client, unique):
    packet = claimed(client, unique)
    assert packet.status == "claimed"
    assert packet.metadata.claimed_at is not None
    moving = client.update_packet(packet.id, PacketUpdate(status="in_progress"))
    assert moving.status == "in_progress"
    edited = client.update_packet(
        packet.id,
        PacketUpdate(
            context=PacketContext(summary="rewritten"),
            decisions=[Decision(id="d1", decision="Proceed now", rationale="approved")],
        ),
    )
    assert edited.context.summary == "rewritten"
    assert [d.decision for d in edited.decisions] == ["Proceed now", "Discount"]
    done = client.complete_packet(packet.id)
    assert done.status == "completed"
    assert done.metadata.completed_at is not None


def test_history_lists_events_oldest_first(client, unique):
    packet = claimed(client, unique)
    client.update_packet(packet.id, PacketUpdate(status="in_progress"))
    client.complete_packet(packet.id)
    history = client.get_history(packet.id)
    assert str(history.packet_id) == str(packet.id)
    assert [e.event_type for e in history.events] == ["created", "claimed", "in_progress", "completed"]
    assert history.events[1].actor == "agent:billing-01"
    assert history.events[3].details == {"from_status": "in_progress", "to_status": "completed"}


def test_chain_creates_a_linked_child(client, unique):
    parent = client.create_packet(full_packet(unique))
    request = ChainBuilder().from_("billing-01", "BillingBot").to("followup-01", "FollowUpBot").with_summary("Follow up").build()
    child = client.chain_handoff(parent.id, request)
    assert str(child.parent_packet_id) == str(parent.id)
    assert child.status == "created"
    assert [e.event_type for e in client.get_history(parent.id).events] == ["created", "chained"]


def test_hitl_checkpoint_is_answered_by_a_human(client, unique):
    packet = client.create_packet(full_packet(unique, hitl=True))
    assert packet.status == "awaiting_human"
    assert packet.hitl.required is True
    waiting = client.get_awaiting(limit=200)
    assert str(packet.id) in {str(p.id) for p in waiting.packets}
    answered = client.respond_to_hitl(packet.id, response="approved", responded_by="ann", notes="ok")
    assert answered.status == "claimed"
    assert answered.hitl.response == "approved"
    assert answered.hitl.responded_by == "ann"
    assert answered.hitl.responded_at is not None
    with pytest.raises(ValidationError) as error:
        client.respond_to_hitl(packet.id, response="again", responded_by="bob")
    assert error.value.status_code == 409


def test_human_checkpoint_cannot_be_skipped_by_a_claim(client, unique):
    packet = client.create_packet(full_packet(unique, hitl=True))
    with pytest.raises(ValidationError) as error:
        client.claim_packet(packet.id, agent_id="eager", agent_name="Eager")
    assert error.value.status_code == 409
    assert "awaiting a human response" in error.value.message


def test_delete_expires_and_a_later_claim_is_gone(client, unique):
    packet = client.create_packet(full_packet(unique))
    assert client.delete_packet(packet.id) is None
    assert client.get_packet(packet.id).status == "expired"
    with pytest.raises(NotFoundError) as gone:
        client.claim_packet(packet.id, agent_id="late", agent_name="Late")
    assert gone.value.status_code == 410
    assert gone.value.resource_id == f"/packets/{packet.id}/claim"
    with pytest.raises(ValidationError) as again:
        client.delete_packet(packet.id)
    assert again.value.status_code == 409


def test_second_claim_is_a_validation_error_naming_the_claimant(client, unique):
    packet = claimed(client, unique)
    with pytest.raises(ValidationError) as error:
        client.claim_packet(packet.id, agent_id="second", agent_name="Second")
    assert error.value.status_code == 409
    assert "already claimed" in error.value.message
    assert error.value.response_body["detail"]["claimed_by"]["id"] == "billing-01"


def test_a_claimed_packet_completes_as_the_sdk_guide_shows(client, unique):
    # Decision 13: claim, then complete, with nothing in between.
    packet = claimed(client, unique)
    done = client.complete_packet(packet.id)
    assert done.status == "completed"
    assert done.metadata.completed_at is not None
    history = client.get_history(packet.id)
    assert [e.event_type for e in history.events] == ["created", "claimed", "completed"]


def test_illegal_transition_is_a_validation_error(client, unique):
    packet = client.create_packet(full_packet(unique))
    with pytest.raises(ValidationError) as error:
        client.complete_packet(packet.id)
    assert error.value.status_code == 400
    assert "Cannot transition from 'created' to 'completed'" in error.value.message


def test_unknown_packet_is_not_found(client):
    with pytest.raises(NotFoundError) as error:
        client.get_packet(uuid.uuid4())
    assert error.value.status_code == 404


def test_invalid_ids_are_request_validation_errors(client):
    with pytest.raises(ServerError) as error:
        client.get_packet("not-a-uuid")
    assert error.value.status_code == 422
    assert error.value.response_body["detail"][0]["loc"] == ["path", "packet_id"]


def test_bad_and_missing_keys_are_authentication_errors(base_url):
    for key in ["hr_" + "x" * 43, ""]:
        with HandoffRailClient(base_url=base_url, api_key=key, max_retries=0) as stranger:
            with pytest.raises(AuthenticationError) as error:
                stranger.list_packets()
            assert error.value.status_code == 401


def test_revoked_key_is_refused(client, base_url):
    created = client.create_api_key(name="short-lived", role="reader")
    assert created.key and created.key.startswith("hr_")
    assert created.role == "reader" and created.revoked is False
    listed = {k.id: k for k in client.list_api_keys()}
    assert listed[created.id].key is None
    # The SDK has no method for revoking keys; the server route is plain REST.
    revoked_reply = httpx.delete(f"{base_url}/keys/{created.id}", headers={"X-API-Key": client.api_key})
    assert revoked_reply.status_code == 204
    with HandoffRailClient(base_url=base_url, api_key=created.key, max_retries=0) as revoked:
        with pytest.raises(ServerError) as error:
            revoked.list_packets()
        assert error.value.status_code == 403


def test_reader_key_cannot_create(client, base_url, unique):
    reader = client.create_api_key(name="reader", role="reader")
    with HandoffRailClient(base_url=base_url, api_key=reader.key, max_retries=0) as limited:
        assert limited.list_packets(tags=unique).total == 0
        with pytest.raises(ServerError) as error:
            limited.create_packet(full_packet(unique))
        assert error.value.status_code == 403


def test_other_tenant_cannot_see_the_packet(client, base_url, unique):
    packet = client.create_packet(full_packet(unique))
    outsider = client.create_api_key(name="acme admin", tenant_id=f"acme-{unique}", role="admin")
    assert outsider.tenant_id == f"acme-{unique}"
    with HandoffRailClient(base_url=base_url, api_key=outsider.key, max_retries=0) as other:
        with pytest.raises(NotFoundError):
            other.get_packet(packet.id)
        assert other.list_packets().total == 0


def test_async_client_runs_the_same_lifecycle(base_url, admin_key, unique):
    async def scenario():
        async with AsyncHandoffRailClient(base_url=base_url, api_key=admin_key, max_retries=0) as client:
            packet = await client.create_packet(full_packet(unique))
            await client.claim_packet(packet.id, agent_id="a", agent_name="A")
            await client.update_packet(packet.id, PacketUpdate(status="in_progress"))
            done = await client.complete_packet(packet.id)
            assert done.status == "completed"
            with pytest.raises(ValidationError):
                await client.claim_packet(packet.id, agent_id="b", agent_name="B")

    asyncio.run(scenario())


def test_batch_create_claim_and_complete(client, unique):
    created = client.batch_create_packets([full_packet(f"{unique}-{n}") for n in range(3)])
    assert len(created.created) == 3 and created.errors == []
    ids = [str(packet.id) for packet in created.created]
    unknown = str(uuid.uuid4())

    claimed = client.batch_claim_packets(ids + [unknown], agent_id="billing-01", agent_name="BillingBot")
    assert {str(packet.id) for packet in claimed.claimed} == set(ids)
    assert all(packet.status == "claimed" for packet in claimed.claimed)
    assert [(str(error.packet_id), error.error) for error in claimed.errors] == [(unknown, f"Packet {unknown} not found")]

    again = client.batch_claim_packets(ids[:1], agent_id="other", agent_name="Other", framework="crewai")
    assert again.claimed == [] and again.errors[0].error == "Already claimed by billing-01"

    client.update_packet(ids[0], PacketUpdate(status="in_progress"))
    completed = client.batch_complete_packets(ids[:2])
    # In progress or, by decision 13, claimed.
    assert [str(packet.id) for packet in completed.completed] == ids[:2]
    assert all(packet.status == "completed" for packet in completed.completed)
    assert completed.errors == []
    again = client.batch_complete_packets(ids[:1])
    assert again.errors[0].error == "Cannot complete from status 'completed'"


def test_batch_limits_map_to_sdk_errors(client, unique):
    with pytest.raises(ValidationError) as too_many:
        client.batch_create_packets([full_packet(f"{unique}-{n}") for n in range(51)])
    assert too_many.value.status_code == 400
    assert "Batch size exceeds maximum of 50" in too_many.value.message
    with pytest.raises(ServerError) as empty:
        client.batch_claim_packets([], agent_id="a", agent_name="A")
    assert empty.value.status_code == 422


def test_search_ranks_the_exact_summary_first_and_counts_every_hit(client, unique):
    from handoffrail.sdk.models import SearchOptions

    exact = f"Quarterly invoice {unique}"
    for summary in [exact, f"Question about the quarterly invoice {unique} and shipping", "unrelated"]:
        client.create_packet(PacketBuilder().from_("a", "A").to("b", "B").with_summary(summary).build())
    found = client.search_packets(exact)
    assert found.total == 2
    assert found.packets[0].context.summary == exact
    page = client.search_packets(f"invoice {unique}", SearchOptions(limit=1, offset=1))
    assert len(page.packets) == 1 and page.total == 2
    # Query syntax is just text: no error, whatever the punctuation.
    assert client.search_packets(f'"{unique}" OR -x* (a:b) & !c <-> d').total == 0
    with pytest.raises(ServerError) as short:
        client.search_packets("x")
    assert short.value.status_code == 422


def test_tenants_and_their_keys(client, unique):
    tenant = client.create_tenant(name=f"Acme {unique}", tier="pro", handoffs_per_day=100)
    assert (tenant.tier, tenant.handoffs_per_day, tenant.max_api_keys) == ("pro", 100, 5)
    assert str(tenant.id) in {str(t.id) for t in client.list_tenants()}
    assert client.get_tenant(str(tenant.id)).name == f"Acme {unique}"
    assert client.get_tenant("default").name == "Default Tenant"
    updated = client.update_tenant(str(tenant.id), max_api_keys=9)
    assert (updated.max_api_keys, updated.tier) == (9, "pro")
    with pytest.raises(ValidationError) as duplicate:
        client.create_tenant(name=f"Acme {unique}")
    assert duplicate.value.status_code == 409

    key = client.create_api_key(name=f"agent {unique}", tenant_id=str(tenant.id), role="agent")
    assert key.key.startswith("hr_") and key.role == "agent"
    listed = client.list_tenant_keys(str(tenant.id))
    assert [(k.name, k.key) for k in listed] == [(f"agent {unique}", None)]
    assert f"agent {unique}" not in {k.name for k in client.list_api_keys()}, "keys stay in their tenant"

    client.delete_tenant(str(tenant.id))
    with pytest.raises(NotFoundError):
        client.get_tenant(str(tenant.id))
    with pytest.raises(NotFoundError):
        client.delete_tenant(str(tenant.id))


def test_audit_log_lists_packet_events_newest_first(client, unique):
    packet = claimed(client, unique)
    log = client.list_audit_log(packet_id=packet.id)
    assert [entry.action for entry in log.entries] == ["claimed", "created"]
    assert log.total == 2
    assert log.entries[0].actor == "agent:billing-01"
    assert str(log.entries[0].packet_id) == str(packet.id)
    only_claims = client.list_audit_log(packet_id=str(packet.id), action="claimed", limit=1)
    assert [entry.action for entry in only_claims.entries] == ["claimed"] and only_claims.limit == 1
    with pytest.raises(ServerError) as bad:
        client.list_audit_log(packet_id="not-a-uuid")
    assert bad.value.status_code == 422


def test_schema_registry_validates_packet_contexts(client, unique):
    document = {
        "type": "object",
        "required": ["custom"],
        "properties": {"custom": {"type": "object", "required": ["order_id"]}},
    }
    schema = client.create_schema(name=f"order {unique}", json_schema=document)
    assert (schema.name, schema.version, schema.json_schema) == (f"order {unique}", 1, document)
    second = client.create_schema(name=f"order {unique}", json_schema={"type": "object"}, version=2)
    assert second.version == 2
    assert client.get_schema(str(schema.id)).json_schema == document
    listed = client.list_schemas(limit=200)
    assert {str(schema.id), str(second.id)} <= {str(s.id) for s in listed.schemas}
    assert listed.total >= 2 and listed.limit == 200
    with pytest.raises(NotFoundError):
        client.get_schema(str(uuid.uuid4()))
    with pytest.raises(ServerError) as no_type:
        client.create_schema(name="untyped", json_schema={"properties": {}})
    assert no_type.value.status_code == 422

    good = full_packet(unique).model_copy(update={"schema_id": str(schema.id)})
    good.context.custom = {"order_id": "ord_42"}
    assert client.create_packet(good).context.custom == {"order_id": "ord_42"}
    bad = full_packet(unique).model_copy(update={"schema_id": str(schema.id)})
    with pytest.raises(ServerError) as refused:
        client.create_packet(bad)
    assert refused.value.status_code == 422
    assert refused.value.response_body == {
        "detail": "Context validation failed: \"order_id\" is a required property (at 'custom')"
    }


def test_free_tier_limits_raise_rate_limit_error(base_url, admin_key, unique):
    # A free writer key in a tenant of its own (the SDK's create_api_key has no tier; POST /keys does).
    created = httpx.post(
        f"{base_url}/keys",
        headers={"X-API-Key": admin_key},
        json={"name": f"free {unique}", "role": "writer", "tier": "free", "tenant_id": unique},
    )
    assert created.status_code == 201, created.text
    with HandoffRailClient(base_url=base_url, api_key=created.json()["key"], max_retries=0) as free:
        for _ in range(5):
            free.create_packet(full_packet(unique))
        with pytest.raises(RateLimitError) as daily:
            free.create_packet(full_packet(unique))
        assert daily.value.response_body == {"detail": "Daily handoff limit reached for your tier"}
        assert 0 < daily.value.retry_after <= 86400
        with pytest.raises(RateLimitError) as hourly:
            for _ in range(200):
                free.list_packets()
        assert hourly.value.response_body == {"detail": "Rate limit exceeded", "field": "rate_limit"}
        assert 0 < hourly.value.retry_after <= 3600
