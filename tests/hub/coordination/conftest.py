"""Fixtures shared by the coordination tests on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from .db import World, world


@pytest.fixture
def w() -> World:
    """A small synthetic region (tests/hub/coordination/db.py)."""
    return world()


@pytest.fixture
def operator(django_user_model: Any) -> Any:
    """A user to act as the operator (no role: the services take who, not whether)."""
    return django_user_model.objects.create_user(username="operator", password=None)
