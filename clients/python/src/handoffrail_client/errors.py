"""The client's errors: the server refused (`ApiError`, with its status and `detail`) or could not be reached
(`Unavailable`). Neither is ever a verdict: a gate that catches them must not treat them as PASS."""

from __future__ import annotations

from typing import Any


class HandoffRailError(Exception):
    """Anything this client raises."""


class ApiError(HandoffRailError):
    """The server answered with an error status; `detail` is its explanation (a string, or FastAPI-style list)."""

    def __init__(self, status: int, detail: Any, method: str, path: str, body: Any = None) -> None:
        self.status = status
        self.detail = detail
        # The whole answer (a rejected verified handoff carries its `verification` here).
        self.body = body
        super().__init__(f"{method} {path}: {status} {detail}")


class Unavailable(HandoffRailError):
    """The server could not be reached, or did not answer in time."""
