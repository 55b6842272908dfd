"""Tool sessions: an agent's HTTP calls through HandoffRail's recording proxy, tagged with run and action, each
call's record id handed back (docs/interceptor.md: headers, CA).

    tools = client.tool_session(agent_id="order-agent")
    with tools.action("get_order") as call, tools.httpx() as http:
        order = http.get("https://api.example.com/v1/orders/7").json()
    call.record_id          # the X-HandoffRail-Record of that response: the claim's `ref`

`requests()`, `httpx()` and `async_httpx()` return clients that go through the proxy (credentials: the agent id
and the API key), trust the proxy's CA for HTTPS (TLS from the agent ends at the proxy), and tag every request
with `X-HandoffRail-Run` and, inside `action(...)`, `X-HandoffRail-Action`. The action is held in a context
variable, so concurrent asyncio tasks each tag and collect their own calls.
"""

from __future__ import annotations

import contextvars
import os
import ssl
import tempfile
import uuid
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from httpx import AsyncClient as HttpxAsyncClient
from httpx import Client as HttpxClient
from httpx import Request, Response

if TYPE_CHECKING:
    import requests

RUN_HEADER = "X-HandoffRail-Run"
ACTION_HEADER = "X-HandoffRail-Action"
RECORD_HEADER = "X-HandoffRail-Record"
DEFAULT_PROXY = "127.0.0.1:8081"

_current: contextvars.ContextVar[Action | None] = contextvars.ContextVar("handoffrail_action", default=None)


def record_id(response: Response | requests.Response) -> str | None:
    """The record id the proxy gave `response` (`X-HandoffRail-Record`), if it went through the proxy."""
    return response.headers.get(RECORD_HEADER)


@dataclass
class Action:
    """The calls made for one named action; use as `with` or `async with`. `record_ids` in call order."""

    name: str
    record_ids: list[str] = field(default_factory=list)
    _token: contextvars.Token[Action | None] | None = field(default=None, repr=False)

    @property
    def record_id(self) -> str:
        """The last call's record id: the `ref` of a claim about it. `LookupError` when no call was recorded."""
        if not self.record_ids:
            raise LookupError(f"action {self.name!r} made no call through the proxy")
        return self.record_ids[-1]

    def __enter__(self) -> Action:
        self._token = _current.set(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None

    async def __aenter__(self) -> Action:
        return self.__enter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.__exit__(kind, error, trace)


class ToolSession:
    """One agent's run: its proxy settings, the proxy's CA, its run id and the record ids of its calls."""

    def __init__(self, *, agent_id: str, api_key: str, ca_pem: str, run_id: str | None = None, proxy: str | None = None):
        if not agent_id:
            raise ValueError("agent_id is required: the proxy records calls under it")
        self.agent_id = agent_id
        self.run_id = run_id or str(uuid.uuid4())
        self.ca_pem = ca_pem
        self.record_ids: list[str] = []
        address = proxy or os.environ.get("HANDOFFRAIL_PROXY") or DEFAULT_PROXY
        parts = urlsplit(address if "://" in address else f"http://{address}")
        # The proxy's credentials: the agent id and the API key (they are not forwarded upstream).
        self.proxy_url = f"http://{quote(agent_id, safe='')}:{quote(api_key, safe='')}@{parts.netloc}"
        self._ca_file: str | None = None

    def __repr__(self) -> str:
        return f"ToolSession(agent_id={self.agent_id!r}, run_id={self.run_id!r})"

    def action(self, name: str) -> Action:
        """Tags the calls made inside it with action `name` and collects their record ids."""
        return Action(name)

    def ca_file(self) -> str:
        """The proxy's CA certificate as a private file (for `requests`, `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`)."""
        if self._ca_file is None:
            descriptor, path = tempfile.mkstemp(prefix="handoffrail-ca-", suffix=".pem")
            with os.fdopen(descriptor, "w") as file:
                file.write(self.ca_pem)
            self._ca_file = path
        return self._ca_file

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies HTTPS through the proxy: certificates signed by the proxy's CA."""
        return ssl.create_default_context(cadata=self.ca_pem)

    def tags(self) -> dict[str, str]:
        """The headers the proxy records a call under now: the run, and the current action if any."""
        tags = {RUN_HEADER: self.run_id}
        action = _current.get()
        if action is not None:
            tags[ACTION_HEADER] = action.name
        return tags

    def collect(self, response: Response | requests.Response) -> None:
        """Notes the record id of `response` in the session and the current action."""
        found = record_id(response)
        if found is None:
            return
        self.record_ids.append(found)
        action = _current.get()
        if action is not None:
            action.record_ids.append(found)

    def httpx(self, **options: Any) -> HttpxClient:
        """An `httpx.Client` through the proxy; `options` go to `httpx.Client` (timeouts, base_url, …)."""

        def tag(request: Request) -> None:
            request.headers.update(self.tags())

        return HttpxClient(
            proxy=self.proxy_url,
            verify=self.ssl_context(),
            trust_env=False,
            event_hooks={"request": [tag], "response": [self.collect]},
            **options,
        )

    def async_httpx(self, **options: Any) -> HttpxAsyncClient:
        """An `httpx.AsyncClient` through the proxy; `options` go to `httpx.AsyncClient`."""

        async def tag(request: Request) -> None:
            request.headers.update(self.tags())

        async def collect(response: Response) -> None:
            self.collect(response)

        return HttpxAsyncClient(
            proxy=self.proxy_url,
            verify=self.ssl_context(),
            trust_env=False,
            event_hooks={"request": [tag], "response": [collect]},
            **options,
        )

    def requests(self) -> requests.Session:
        """A `requests.Session` through the proxy (needs `pip install handoffrail-client[requests]`)."""
        import requests

        session = self

        class TaggedSession(requests.Session):
            def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
                request.headers = {**session.tags(), **(request.headers or {})}
                return super().prepare_request(request)

        tagged = TaggedSession()
        tagged.trust_env = False
        tagged.proxies = {"http": self.proxy_url, "https": self.proxy_url}
        tagged.verify = self.ca_file()
        tagged.hooks["response"].append(lambda response, *args, **kwargs: self.collect(response))
        return tagged

    def close(self) -> None:
        """Removes the CA file, if one was written."""
        if self._ca_file is not None:
            os.unlink(self._ca_file)
            self._ca_file = None

    def __enter__(self) -> ToolSession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
