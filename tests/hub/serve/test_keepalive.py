"""A worker closes a kept-alive connection after every n-th of its requests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from hub.serve.access import StartResponse
from hub.serve.keepalive import with_connection_recycling


def _app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _headers_of(app: Any, requests: int, protocol: str = "HTTP/1.1") -> list[list[tuple[str, str]]]:
    seen: list[list[tuple[str, str]]] = []
    for _ in range(requests):
        body = app(
            {"SERVER_PROTOCOL": protocol}, lambda status, headers, *exc: seen.append(headers)
        )
        assert list(body) == [b"ok"]
    return seen


def test_every_nth_response_closes_the_connection_and_the_others_are_untouched() -> None:
    seen = _headers_of(with_connection_recycling(_app, 3), 7)
    closing = [n for n, headers in enumerate(seen, 1) if ("Connection", "close") in headers]
    assert closing == [3, 6]
    assert seen[0] == [("Content-Type", "text/plain")]
    assert seen[2] == [("Content-Type", "text/plain"), ("Connection", "close")]


def test_one_closes_every_connection_after_its_request() -> None:
    seen = _headers_of(with_connection_recycling(_app, 1), 3)
    assert all(("Connection", "close") in headers for headers in seen)


def test_http2_responses_are_left_alone_and_not_counted() -> None:
    app = with_connection_recycling(_app, 2)
    assert all(("Connection", "close") not in h for h in _headers_of(app, 3, "HTTP/2"))
    # The HTTP/2 requests did not count: the second HTTP/1.1 one closes.
    closing = [("Connection", "close") in h for h in _headers_of(app, 2)]
    assert closing == [False, True]


def test_a_connection_header_of_the_app_is_replaced_and_exc_info_passed_on() -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start_response("500 Internal Server Error", [("connection", "keep-alive")], "exc")
        return [b"ok"]

    seen: list[tuple[Any, ...]] = []
    body = with_connection_recycling(app, 1)(
        {"SERVER_PROTOCOL": "HTTP/1.1"}, lambda *args: seen.append(args)
    )
    assert list(body) == [b"ok"]
    assert seen == [("500 Internal Server Error", [("Connection", "close")], "exc")]


def test_less_than_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        with_connection_recycling(_app, 0)
