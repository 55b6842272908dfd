"""HandoffRail's Python client: verifiable agent output, tool calls recorded through the proxy, verdicts.

See docs/python-client.md in the HandoffRail repository.
"""

from .client import AsyncClient, Client
from .errors import ApiError, HandoffRailError, Unavailable
from .models import (
    AgentResponse,
    ClaimedValue,
    ClaimResult,
    EntryResult,
    Outcome,
    Policy,
    Verdict,
    VerificationMode,
)
from .payload import build_handoff_payload
from .tools import Action, ToolSession, record_id

__all__ = [
    "Action",
    "AgentResponse",
    "ApiError",
    "AsyncClient",
    "ClaimResult",
    "ClaimedValue",
    "Client",
    "EntryResult",
    "HandoffRailError",
    "Outcome",
    "Policy",
    "ToolSession",
    "Unavailable",
    "Verdict",
    "VerificationMode",
    "build_handoff_payload",
    "record_id",
]
