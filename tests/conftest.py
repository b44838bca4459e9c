"""Fixtures shared by every test package."""

import os
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def kafka_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


@pytest.fixture
def unique_topic() -> str:
    # The broker is shared by every test (and every developer's run): names never repeat.
    return f"test.{uuid.uuid4().hex[:12]}"


@pytest.fixture(autouse=True)
def _unhashed_static_files(settings: Any) -> None:
    """Render templates without a collected manifest: a fresh checkout has not run collectstatic."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _census_ahead_closed() -> Iterator[None]:
    """A region evaluation outside any test transaction reads the census on a second
    connection (hub/coordination/census_ahead.py); closed after the test, so no session
    outlives the test database."""
    yield
    ahead = sys.modules.get("hub.coordination.census_ahead")
    if ahead is not None:
        ahead.close()
