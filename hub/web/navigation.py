"""The pages of the web app, who may open each, and where a user lands after logging in.

One list drives the menu and the landing page, so a page a role may not open is never
offered to it. A page whose view is not wired yet (its URL does not resolve) is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from governance.access import can


@dataclass(frozen=True, slots=True)
class Page:
    label: str
    url_name: str
    action: str  # the governed action the page declares


PAGES: tuple[Page, ...] = (
    Page("Regional board", "web:board", "read_hospitals"),
    Page("Diversion", "web:diversion", "coordinate"),
    Page("Surge", "web:surge", "coordinate"),
    Page("Resource sharing", "web:sharing", "coordinate"),
    Page("Benchmarks", "web:benchmarks", "read_benchmarks"),
    Page("What-if", "web:whatif", "run_scenario"),
    Page("Alerts", "web:alerts", "coordinate"),
    Page("Sharing policies", "govweb:policies", "read_policy"),
    Page("Erasure requests", "govweb:erasure", "read_erasure"),
    Page("Audit log", "govweb:audit", "read_audit"),
    Page("Retention", "govweb:retention", "read_retention"),
)


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    url: str
    url_name: str


def pages_for(user: Any) -> list[NavItem]:
    """The pages ``user`` may open, in menu order."""
    items = []
    for page in PAGES:
        if not can(user, page.action):
            continue
        try:
            url = reverse(page.url_name)
        except NoReverseMatch:
            continue
        items.append(NavItem(page.label, url, page.url_name))
    return items


def landing_url(user: Any) -> str | None:
    """The first page of the menu: the board for operations roles, policies for the board,
    the audit log for auditors. ``None`` when the user may open no page at all."""
    items = pages_for(user)
    return items[0].url if items else None


def nav(request: HttpRequest) -> dict[str, Any]:
    """Template context processor: the menu for the current user."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    return {"nav_items": pages_for(user)}
