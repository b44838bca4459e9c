"""JSON log lines with the ids that follow a record from the site to the hub."""

from __future__ import annotations

import io
import json
import logging

import pytest

from deid.logformat import JsonFormatter, configure_logging, log_context, log_format


def _line(record: logging.LogRecord) -> dict[str, str]:
    return json.loads(JsonFormatter().format(record))


def _record(msg: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("deid.worker", logging.INFO, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_line_is_one_json_object_with_time_level_logger_and_message() -> None:
    line = _line(_record("envelope %s", "b-1"))
    assert line["level"] == "INFO"
    assert line["logger"] == "deid.worker"
    assert line["message"] == "envelope b-1"
    assert line["time"].endswith("+00:00")
    assert "request_id" not in line  # absent ids are left out, not written empty


def test_ids_passed_as_extra_are_written() -> None:
    line = _line(_record(event_id="e-1", source_event_id="s-1", batch_id="b-1", site="STM"))
    assert (line["event_id"], line["source_event_id"], line["batch_id"], line["site"]) == (
        "e-1",
        "s-1",
        "b-1",
        "STM",
    )


def test_ids_bound_by_the_context_are_written_and_extra_wins() -> None:
    with log_context(request_id="r-1", batch_id="outer"), log_context(site="STM"):
        line = _line(_record(batch_id="inner"))
    assert line["request_id"] == "r-1"
    assert line["site"] == "STM"
    assert line["batch_id"] == "inner"
    assert "request_id" not in _line(_record())  # unbound after the block


def test_the_request_id_of_a_request_passed_by_django_is_used() -> None:
    class Request:
        request_id = "from-the-request"

    assert _line(_record(request=Request()))["request_id"] == "from-the-request"


def test_an_exception_is_kept_in_the_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = _record()
        record.exc_info = sys.exc_info()
    line = _line(record)
    assert "RuntimeError: boom" in line["exception"]


@pytest.mark.parametrize(("value", "expected"), [("json", "json"), ("JSON", "json"), ("", "plain")])
def test_log_format_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    monkeypatch.setenv("LOG_FORMAT", value)
    assert log_format() == expected


def test_configure_logging_writes_json_lines_when_asked() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    try:
        configure_logging("DEBUG", fmt="json", stream=stream)
        logging.getLogger("site_agent.store").debug("outbox %s", "e-9", extra={"event_id": "e-9"})
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["event_id"] == "e-9"
    assert line["level"] == "DEBUG"
