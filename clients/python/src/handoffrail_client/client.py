"""`Client` and `AsyncClient`: the evaluator, records, trusted endpoints and tool sessions of one HandoffRail
server, as one API key sees them. The two have the same methods; `AsyncClient`'s are coroutines.

    with Client() as hr:                               # HANDOFFRAIL_URL, HANDOFFRAIL_API_KEY
        verdict = hr.evaluate(payload)                 # {"outcome", "per_claim", "errors", ...}

Errors raise (`ApiError`, `Unavailable`); a verdict is only ever what the server decided.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, cast

import httpx

from . import _calls
from ._calls import Call
from .errors import Unavailable
from .models import Policy, Verdict
from .tools import ToolSession


class _Base:
    def __init__(self, base_url: str | None, api_key: str | None) -> None:
        self.base_url, self.api_key = _calls.settings(base_url, api_key)

    def _tool_session(self, ca_pem: str, agent_id: str, run_id: str | None, proxy: str | None) -> ToolSession:
        return ToolSession(agent_id=agent_id, api_key=self.api_key, ca_pem=ca_pem, run_id=run_id, proxy=proxy)

    @staticmethod
    def _same_endpoint(endpoint: dict[str, Any], url: str, methods: list[str] | None) -> bool:
        wanted = sorted(method.upper() for method in methods or [])
        return bool(endpoint.get("url") == url and sorted(endpoint.get("methods", [])) == wanted)


class Client(_Base):
    """A synchronous client. `timeout` is seconds per request."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0) -> None:
        super().__init__(base_url, api_key)
        self._http = httpx.Client(
            base_url=self.base_url, headers={"X-API-Key": self.api_key}, timeout=timeout, trust_env=False
        )

    def _send(self, call: Call) -> Any:
        try:
            response = self._http.request(call.method, call.path, json=call.json, params=call.params)
        except httpx.TransportError as error:
            raise Unavailable(f"{call.method} {self.base_url}{call.path}: {error}") from error
        return _calls.answer(call, response)

    def evaluate(self, payload: dict[str, Any]) -> Verdict:
        """Checks the payload's claims against the recorded evidence; the stored verdict."""
        return cast(Verdict, self._send(_calls.evaluate(payload)))

    def get_evaluation(self, evaluation_id: str) -> Verdict:
        return cast(Verdict, self._send(_calls.get_evaluation(evaluation_id)))

    def get_record(self, record_id: str) -> dict[str, Any]:
        """One evidence record with its bodies (base64), seal, `signature_valid`, `trusted` and `trusted_now`."""
        return cast(dict[str, Any], self._send(_calls.get_record(record_id)))

    def list_records(self, *, run_id: str | None = None, action: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The newest records (metadata only) of a run and/or action."""
        return cast(list[dict[str, Any]], self._send(_calls.list_records(run_id, action, limit))["records"])

    def trust(self, url: str, methods: list[str] | None = None) -> dict[str, Any]:
        """Makes `url` (a template: `{id}` a segment, a last `{rest:path}` the rest) a trusted endpoint of the
        tenant, unless it already is with these methods; the endpoint."""
        for endpoint in self._send(_calls.trusted_endpoints()):
            if self._same_endpoint(endpoint, url, methods):
                return cast(dict[str, Any], endpoint)
        return cast(dict[str, Any], self._send(_calls.trust(url, methods)))

    def ca_pem(self) -> str:
        """The proxy's CA certificate (PEM)."""
        return cast(str, self._send(_calls.ca_pem()))

    def create_packet(
        self,
        packet: Any,
        claims: dict[str, Any] | None = None,
        *,
        on_caught: Policy = "hold",
        on_error: Policy = "hold",
    ) -> dict[str, Any]:
        """Creates a handoff packet (a mapping, or the packet SDK's `PacketCreate`); with `claims` (a payload from
        `build_handoff_payload`) a verified one: the server checks the claims first and applies the policy for a
        CAUGHT or ERROR verdict — `hold` for a human, `reject` (raises `ApiError` 422, whose `detail` and
        `body["verification"]` say why), or `flag`. The packet, with its `verification`."""
        verification = None if claims is None else _calls.verification(claims, on_caught, on_error)
        return cast(dict[str, Any], self._send(_calls.create_packet(_calls.packet_body(packet), verification)))

    def get_packet(self, packet_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(_calls.get_packet(packet_id)))

    def verify_packet(self, packet_id: str) -> dict[str, Any]:
        """Evaluates a verified packet's claims again (evidence may have arrived late); the packet."""
        return cast(dict[str, Any], self._send(_calls.verify_packet(packet_id)))

    def tool_session(self, agent_id: str, *, run_id: str | None = None, proxy: str | None = None) -> ToolSession:
        """A tool session for `agent_id` (run id generated unless given; proxy from `HANDOFFRAIL_PROXY`, default
        127.0.0.1:8081)."""
        return self._tool_session(self.ca_pem(), agent_id, run_id, proxy)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class AsyncClient(_Base):
    """An asyncio client with `Client`'s methods as coroutines."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0) -> None:
        super().__init__(base_url, api_key)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers={"X-API-Key": self.api_key}, timeout=timeout, trust_env=False
        )

    async def _send(self, call: Call) -> Any:
        try:
            response = await self._http.request(call.method, call.path, json=call.json, params=call.params)
        except httpx.TransportError as error:
            raise Unavailable(f"{call.method} {self.base_url}{call.path}: {error}") from error
        return _calls.answer(call, response)

    async def evaluate(self, payload: dict[str, Any]) -> Verdict:
        return cast(Verdict, await self._send(_calls.evaluate(payload)))

    async def get_evaluation(self, evaluation_id: str) -> Verdict:
        return cast(Verdict, await self._send(_calls.get_evaluation(evaluation_id)))

    async def get_record(self, record_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], await self._send(_calls.get_record(record_id)))

    async def list_records(
        self, *, run_id: str | None = None, action: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], (await self._send(_calls.list_records(run_id, action, limit)))["records"])

    async def trust(self, url: str, methods: list[str] | None = None) -> dict[str, Any]:
        for endpoint in await self._send(_calls.trusted_endpoints()):
            if self._same_endpoint(endpoint, url, methods):
                return cast(dict[str, Any], endpoint)
        return cast(dict[str, Any], await self._send(_calls.trust(url, methods)))

    async def ca_pem(self) -> str:
        return cast(str, await self._send(_calls.ca_pem()))

    async def create_packet(
        self,
        packet: Any,
        claims: dict[str, Any] | None = None,
        *,
        on_caught: Policy = "hold",
        on_error: Policy = "hold",
    ) -> dict[str, Any]:
        verification = None if claims is None else _calls.verification(claims, on_caught, on_error)
        return cast(dict[str, Any], await self._send(_calls.create_packet(_calls.packet_body(packet), verification)))

    async def get_packet(self, packet_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], await self._send(_calls.get_packet(packet_id)))

    async def verify_packet(self, packet_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], await self._send(_calls.verify_packet(packet_id)))

    async def tool_session(self, agent_id: str, *, run_id: str | None = None, proxy: str | None = None) -> ToolSession:
        return self._tool_session(await self.ca_pem(), agent_id, run_id, proxy)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()
