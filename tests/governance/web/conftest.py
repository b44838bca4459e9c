"""Fixtures for the governance screens: the browser harness of the web app, the governance
fixtures (region, users per role, throw-away keys), and a control topic that never reaches
Kafka (published policies and erasure directives are captured instead)."""

from __future__ import annotations

from typing import Any

import pytest

from governance import control
from tests.governance.conftest import (  # noqa: F401
    governance_keys,
    make_user,
    region,
    signing_key_b64,
)
from tests.hub.web.conftest import browser, login, page, shot  # noqa: F401


@pytest.fixture
def control_messages(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Capture what would go on the control topic (policies, erasure directives)."""
    sent: list[dict[str, Any]] = []

    def publish(*, site_code: str, value: bytes, headers: Any = None) -> None:
        sent.append({"site_code": site_code, "value": value, "headers": dict(headers or {})})

    monkeypatch.setattr(control, "publish", publish)
    return sent
