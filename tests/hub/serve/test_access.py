"""The launcher's access line carries the request id the app returned, made or passed on."""

from __future__ import annotations

import copy
import json
import logging
import logging.config
from collections.abc import Iterable
from typing import Any

import pytest
from django.conf import settings

from deid.logformat import JsonFormatter
from hub.serve.access import StartResponse, access_line, with_access_log


def _app(request_id: str | None) -> Any:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        headers = [("Content-Type", "text/plain")]
        if request_id:
            headers.append(("X-Request-ID", request_id))
        start_response("404 Not Found", headers)
        return [b"nope"]

    return app


def _environ(**extra: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/api/v1/live/",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "QUERY_STRING": "",
        **extra,
    }


def test_the_line_names_the_request_its_status_and_the_id_the_app_returned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = with_access_log(_app("019ab4c0ffee"))
    with caplog.at_level(logging.INFO, logger="hub.access"):
        body = app(_environ(QUERY_STRING="site_code=X1"), lambda *a: None)
    assert list(body) == [b"nope"]
    (record,) = caplog.records
    assert record.getMessage().startswith('"GET /api/v1/live/?site_code=X1 HTTP/1.1" 404 ')
    assert record.getMessage().endswith(" request_id=019ab4c0ffee")
    # In JSON lines the id is a field of its own, so it is found like every other line's.
    assert json.loads(JsonFormatter().format(record))["request_id"] == "019ab4c0ffee"


def test_the_real_start_response_still_gets_the_status_and_headers() -> None:
    seen: list[tuple[str, list[tuple[str, str]]]] = []
    with_access_log(_app("abc"))(_environ(), lambda status, headers: seen.append((status, headers)))
    assert seen == [("404 Not Found", [("Content-Type", "text/plain"), ("X-Request-ID", "abc")])]


def test_a_response_without_an_id_logs_a_dash(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="hub.access"):
        with_access_log(_app(None))(_environ(), lambda *a: None)
    assert caplog.records[0].getMessage().endswith(" request_id=-")


def test_control_characters_in_the_target_cannot_start_a_line() -> None:
    forged = '/x\n2026-11-25 INFO hub.access "GET /admin/ HTTP/1.1" 200'
    line = access_line(
        {"REQUEST_METHOD": "GET", "PATH_INFO": forged, "QUERY_STRING": "a=\r\x1b"},
        "200 OK",
        0.001,
        "rid",
    )
    assert not {"\n", "\r", "\x1b"} & set(line)
    assert line.startswith('"GET /x\\x0a2026-11-25 INFO')
    assert "?a=\\x0d\\x1b " in line


def test_the_access_line_is_kept_when_the_log_level_is_quieter() -> None:
    config: dict[str, Any] = copy.deepcopy(settings.LOGGING)
    config["root"]["level"] = "WARNING"
    logging.config.dictConfig(config)
    try:
        assert logging.getLogger("hub.access").isEnabledFor(logging.INFO)
        assert not logging.getLogger("hub.census").isEnabledFor(logging.INFO)
    finally:
        logging.config.dictConfig(settings.LOGGING)
