"""Fixtures shared by every test package."""

import os
import uuid
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
