"""The statement timeout's variable: whole seconds, added to what libpq's options hold."""

from __future__ import annotations

import pytest

from hub.pgbackend.timeouts import timeout_seconds, with_statement_timeout


def test_whole_seconds_and_empty_for_none() -> None:
    assert timeout_seconds("30") == 30
    assert timeout_seconds(" 5 ") == 5
    assert timeout_seconds("") == 0
    assert timeout_seconds("0") == 0


@pytest.mark.parametrize(
    ("value", "message"), [("30s", "whole seconds"), ("1.5", "whole seconds"), ("-3", "must be 0")]
)
def test_anything_else_is_refused_with_the_variable_named(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        timeout_seconds(value)
    assert "DATABASE_STATEMENT_TIMEOUT" in str(caught.value)


def test_the_timeout_joins_the_options_already_there() -> None:
    assert with_statement_timeout("", 30) == "-c statement_timeout=30000"
    assert with_statement_timeout("-c search_path=hub", 2) == (
        "-c search_path=hub -c statement_timeout=2000"
    )
    assert with_statement_timeout("-c search_path=hub", 0) == "-c search_path=hub"
