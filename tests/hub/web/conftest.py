"""Browser fixtures: Playwright driving Debian's Chromium (headless) against Django's live
server. Every page a test opens can be saved with ``shot(page, name)`` into ``screenshots/``
(git-ignored) for a person to look at."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[3] / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
WALL_SCREEN = {"width": 1920, "height": 1080}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Module scope, not session: Playwright's sync API keeps an
    event loop running in the test thread while it is open, and other packages' tests call
    ``asyncio.run()``, which refuses to start inside a running loop."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run scripts/bootstrap --browser")
    # The ORM calls the tests make around the browser are plain synchronous calls in a
    # thread where that loop runs, so Django's async-safety guard is lifted meanwhile.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    """A fresh browser tab at wall-screen size; fails the test on any console error."""
    context = browser.new_context(viewport=WALL_SCREEN, base_url=live_server.url)
    page = context.new_page()
    errors: list[str] = []
    page.on(
        "console",
        lambda m: errors.append(f"{m.text} ({m.location.get('url', '?')})")
        if m.type == "error"
        else None,
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, f"browser console errors: {errors}"


Shot = Callable[[Any, str], Path]


@pytest.fixture
def shot() -> Shot:
    def save(page: Any, name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


Login = Callable[[Any, Any], None]


@pytest.fixture
def login() -> Login:
    """Sign ``user`` in through the login form (the password is set here)."""

    def sign_in(page: Any, user: Any) -> None:
        user.set_password("correct horse battery staple")
        user.save(update_fields=["password"])
        page.goto("/login/")
        page.get_by_label("Username").fill(user.get_username())
        page.get_by_label("Password").fill("correct horse battery staple")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state("networkidle")

    return sign_in
