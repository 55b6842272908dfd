"""Each API call written once — method, path, body, expected answer — for the sync and async clients, which
differ only in how they send it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from .errors import ApiError

DEFAULT_URL = "http://127.0.0.1:8080/api/v1"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    # The answer is text (the CA certificate), not JSON.
    text: bool = False


def settings(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    """The server's API root and the key: as given, else `HANDOFFRAIL_URL` / `HANDOFFRAIL_API_KEY`."""
    url = base_url or os.environ.get("HANDOFFRAIL_URL") or DEFAULT_URL
    key = api_key or os.environ.get("HANDOFFRAIL_API_KEY")
    if not key:
        raise ValueError("an API key is needed: pass api_key= or set HANDOFFRAIL_API_KEY")
    return url.rstrip("/"), key


def answer(call: Call, response: httpx.Response) -> Any:
    """The call's result, or `ApiError` with the server's `detail`."""
    if response.is_success:
        if response.status_code == 204:
            return None
        return response.text if call.text else response.json()
    try:
        body = response.json()
        detail = body.get("detail", response.text) if isinstance(body, dict) else body
    except ValueError:
        body, detail = None, response.text
    raise ApiError(response.status_code, detail, call.method, call.path, body)


def evaluate(payload: dict[str, Any]) -> Call:
    return Call("POST", "/evaluations", json=payload)


def get_evaluation(evaluation_id: str) -> Call:
    return Call("GET", f"/evaluations/{quote(evaluation_id, safe='')}")


def get_record(record_id: str) -> Call:
    return Call("GET", f"/records/{quote(record_id, safe='')}")


def list_records(run_id: str | None, action: str | None, limit: int) -> Call:
    params = {"run_id": run_id, "action": action, "limit": limit}
    return Call("GET", "/records", params={key: value for key, value in params.items() if value is not None})


def trust(url: str, methods: list[str] | None) -> Call:
    return Call("POST", "/trusted-endpoints", json={"url": url, "methods": methods or []})


def trusted_endpoints() -> Call:
    return Call("GET", "/trusted-endpoints")


def ca_pem() -> Call:
    return Call("GET", "/ca.pem", text=True)


def create_packet(packet: dict[str, Any], verification: dict[str, Any] | None) -> Call:
    body = dict(packet)
    if verification is not None:
        body["verification"] = verification
    return Call("POST", "/packets", json=body)


def get_packet(packet_id: str) -> Call:
    return Call("GET", f"/packets/{quote(packet_id, safe='')}")


def verify_packet(packet_id: str) -> Call:
    return Call("POST", f"/packets/{quote(packet_id, safe='')}/verify")


def packet_body(packet: Any) -> dict[str, Any]:
    """A packet as JSON: a mapping, or the packet SDK's model (its `to_dict()`)."""
    if hasattr(packet, "to_dict"):
        return dict(packet.to_dict())
    return dict(packet)


def verification(
    payload: dict[str, Any], on_caught: str, on_error: str
) -> dict[str, Any]:
    """A packet's `verification` from an evaluation payload (`build_handoff_payload`'s) and the policies."""
    kept: dict[str, Any] = {key: payload[key] for key in ("run_id", "agent_id", "claims") if key in payload}
    return {**kept, "on_caught": on_caught, "on_error": on_error}
