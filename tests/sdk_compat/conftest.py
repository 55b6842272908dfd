"""Fixtures for driving the published handoffrail-sdk==0.3.0 against a running HandoffRail server.

The server is started by .ci/run (or by you): set HANDOFFRAIL_URL to its API root
(e.g. http://127.0.0.1:8080/api/v1) and HANDOFFRAIL_API_KEY to an admin key.
"""

import os
import uuid

import pytest
from handoffrail.sdk import HandoffRailClient


@pytest.fixture(scope="session")
def base_url() -> str:
    url = os.environ.get("HANDOFFRAIL_URL")
    if not url:
        pytest.exit("HANDOFFRAIL_URL is not set: start a server and point the suite at it", returncode=2)
    return url


@pytest.fixture(scope="session")
def admin_key() -> str:
    key = os.environ.get("HANDOFFRAIL_API_KEY")
    if not key:
        pytest.exit("HANDOFFRAIL_API_KEY is not set", returncode=2)
    return key


@pytest.fixture(scope="session")
def client(base_url, admin_key):
    # No retries: a mapping error must surface as its exception, not as a retried ConnectionError.
    with HandoffRailClient(base_url=base_url, api_key=admin_key, max_retries=0) as sdk:
        yield sdk


@pytest.fixture()
def unique() -> str:
    """A tag unique to one test, so filters see only that test's packets."""
    return f"t-{uuid.uuid4().hex[:12]}"
