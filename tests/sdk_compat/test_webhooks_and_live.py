"""The unchanged SDK's webhook methods and WebSocket client against our server, with a receiver on loopback.

The server must let webhooks reach 127.0.0.1 and retry quickly: .ci/run starts it with
`--allowed-webhook-hosts 127.0.0.1 --webhook-retry-schedule 200ms,200ms,200ms,200ms,200ms`.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from handoffrail.sdk import HandoffRailWSClient, PacketBuilder, PacketUpdate
from standardwebhooks import Webhook

SECRET = "sdk-suite-webhook-secret"


class Receiver:
    """Records every POST; answers with the queued statuses first, then 200."""

    def __init__(self):
        self.received = []
        self.queued = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    status = receiver.queued.pop(0) if receiver.queued else 200
                    receiver.received.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, done, seconds=20.0):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                received = list(self.received)
            if done(received):
                return received
            time.sleep(0.05)
        raise AssertionError(f"the receiver did not get what was expected: {received}")

    def close(self):
        self.server.shutdown()


@pytest.fixture()
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def packet(tag):
    return (
        PacketBuilder()
        .from_("sdk-planner", "Planner")
        .to("sdk-worker", "Worker")
        .with_summary(f"webhook test {tag}")
        .with_tags([tag])
        .build()
    )


def headers_lower(headers):
    return {name.lower(): value for name, value in headers.items()}


def test_webhook_methods_and_signed_deliveries(client, receiver, unique):
    hook = client.register_webhook(
        url=receiver.url, events=["packet.created", "packet.claimed", "packet.completed"], secret=SECRET
    )
    assert hook.active is True
    assert hook.url == receiver.url
    assert hook.events == ["packet.created", "packet.claimed", "packet.completed"]
    assert any(listed.id == hook.id for listed in client.list_webhooks())

    created = client.create_packet(packet(unique))
    client.claim_packet(created.id, agent_id="sdk-worker", agent_name="Worker")
    client.update_packet(created.id, PacketUpdate(status="in_progress"))
    client.complete_packet(created.id)

    received = receiver.wait_for(
        lambda got: len([r for r in got if json.loads(r[1])["packet_id"] == str(created.id)]) >= 3
    )
    mine = [r for r in received if json.loads(r[1])["packet_id"] == str(created.id)]
    # Arrival order is not promised (docs/api.md §6.2); the events' timestamps give their order.
    mine.sort(key=lambda r: json.loads(r[1])["timestamp"])
    assert [json.loads(body)["event"] for _, body, _ in mine] == [
        "packet.created",
        "packet.claimed",
        "packet.completed",
    ]
    verifier = Webhook(base64.b64encode(SECRET.encode()).decode())
    for headers, body, _ in mine:
        headers = headers_lower(headers)
        payload = verifier.verify(body, headers)
        assert payload["id"] == headers["webhook-id"]
        legacy = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-hr-signature"], legacy)
        assert headers["x-hr-event"] == payload["event"]
    # A tampered body does not verify.
    headers, body, _ = mine[0]
    with pytest.raises(Exception):
        verifier.verify(body.replace(b"packet", b"pocket"), headers_lower(headers))

    deadline = time.monotonic() + 10
    while True:
        deliveries = client.list_webhook_deliveries(str(hook.id), status="delivered", limit=10)
        if len(deliveries) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(deliveries) == 3
    assert {d["event_type"] for d in deliveries} == {"packet.created", "packet.claimed", "packet.completed"}
    assert all(d["attempts"] == 1 and d["status"] == "delivered" for d in deliveries)

    client.delete_webhook(str(hook.id))
    listed = [w for w in client.list_webhooks() if w.id == hook.id]
    assert len(listed) == 1 and listed[0].active is False


def test_a_receiver_refusing_three_times_gets_the_event_once_on_the_fourth(client, receiver, unique):
    receiver.queued = [500, 503, 429]
    hook = client.register_webhook(url=receiver.url, events=["packet.created"], secret=SECRET)
    created = client.create_packet(packet(unique))
    received = receiver.wait_for(lambda got: any(status == 200 for _, _, status in got))
    assert [status for _, _, status in received] == [500, 503, 429, 200]
    ids = {headers_lower(headers)["webhook-id"] for headers, _, _ in received}
    assert len(ids) == 1, "the same event id on every attempt"
    assert json.loads(received[-1][1])["packet_id"] == str(created.id)
    deliveries = client.list_webhook_deliveries(str(hook.id))
    assert len(deliveries) == 1
    client.delete_webhook(str(hook.id))


def test_the_websocket_client_receives_packet_events_by_channel(client, base_url, admin_key, unique):
    ws_url = base_url.replace("http://", "ws://").removesuffix("/api/v1") + "/ws"

    async def scenario():
        events = []
        connected = asyncio.Event()
        claimed = asyncio.Event()
        pong = asyncio.Event()
        ws = HandoffRailWSClient(url=ws_url, api_key=admin_key, reconnect=False)

        async def on_connected():
            connected.set()

        async def on_claimed(event):
            events.append(event)
            claimed.set()

        async def on_any(event):
            if event.get("type", "").startswith("packet."):
                events.append(event)
            elif event.get("type") == "pong":
                pong.set()

        ws.on_connected = on_connected
        ws.on_packet_claimed = on_claimed
        ws.on_event = on_any
        listening = asyncio.create_task(ws.connect())
        await asyncio.wait_for(connected.wait(), 10)
        await ws.subscribe("status:claimed")
        # Messages are handled in order: once the pong is back, the subscription is in force.
        await ws.ping()
        await asyncio.wait_for(pong.wait(), 10)
        loop = asyncio.get_running_loop()
        created = await loop.run_in_executor(None, client.create_packet, packet(unique))
        await loop.run_in_executor(
            None, lambda: client.claim_packet(created.id, agent_id="sdk-worker", agent_name="Worker")
        )
        await asyncio.wait_for(claimed.wait(), 10)
        await ws.disconnect()
        await asyncio.wait_for(listening, 10)
        return created, events

    created, events = asyncio.run(scenario())
    mine = [e for e in events if e["packet_id"] == str(created.id)]
    # status:claimed: the claim, not the creation (its status was `created`); on_event and on_packet_claimed
    # both saw it.
    assert [e["type"] for e in mine] == ["packet.claimed", "packet.claimed"]
    assert mine[0]["data"]["status"] == "claimed"
    assert mine[0]["data"]["metadata"]["target_agent"]["id"] == "sdk-worker"


def test_live_channels_refuse_a_missing_or_unknown_key(base_url):
    import httpx

    root = base_url.removesuffix("/api/v1")
    for path in ["/events", "/events?api_key=hr_unknown", "/ws", "/ws?api_key=hr_unknown"]:
        assert httpx.get(root + path).status_code == 401, path
