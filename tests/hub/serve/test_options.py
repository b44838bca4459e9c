"""The web server's settings: defaults are the demo's, the environment and arguments win."""

from __future__ import annotations

import pytest

from hub.serve.options import ServerOptions, options_from_env, parse_options


def test_the_defaults_are_what_the_load_figures_measured() -> None:
    options = parse_options([], {})
    assert (options.workers, options.blocking_threads, options.runtime_threads) == (4, 1, 1)
    assert options.workers_kill_timeout == 20
    assert options.respawn_failed_workers is True
    assert options.access_log is True
    assert options.host == "127.0.0.1"
    assert options.keepalive_requests == 0  # connections kept open
    assert options.statement_timeout == 30


def test_the_statement_timeout_from_the_environment_and_the_command_line() -> None:
    assert options_from_env({"WEB_STATEMENT_TIMEOUT": "0"}).statement_timeout == 0
    env = {"WEB_STATEMENT_TIMEOUT": "10"}
    assert parse_options(["--statement-timeout", "5"], env).statement_timeout == 5


def test_keepalive_requests_from_the_environment_and_the_command_line() -> None:
    assert options_from_env({"WEB_KEEPALIVE_REQUESTS": "100"}).keepalive_requests == 100
    env = {"WEB_KEEPALIVE_REQUESTS": "100"}
    assert parse_options(["--keepalive-requests", "0"], env).keepalive_requests == 0


def test_the_environment_sets_every_option() -> None:
    options = options_from_env(
        {
            "WEB_HOST": "0.0.0.0",  # noqa: S104 - a value under test, nothing is bound
            "WEB_PORT": "8080",
            "WEB_WORKERS": "3",
            "WEB_BLOCKING_THREADS": "2",
            "WEB_RUNTIME_THREADS": "2",
            "WEB_BACKLOG": "2048",
            "WEB_BACKPRESSURE": "64",
            "WEB_KEEPALIVE_REQUESTS": "50",
            "WEB_WORKERS_KILL_TIMEOUT": "25",
            "WEB_STATEMENT_TIMEOUT": "12",
            "WEB_WORKERS_LIFETIME": "3600",
            "WEB_RESPAWN_FAILED_WORKERS": "false",
            "WEB_ACCESS_LOG": "no",
        }
    )
    assert options == ServerOptions(
        host="0.0.0.0",  # noqa: S104 - a value under test, nothing is bound
        port=8080,
        workers=3,
        blocking_threads=2,
        runtime_threads=2,
        backlog=2048,
        backpressure=64,
        keepalive_requests=50,
        workers_kill_timeout=25,
        statement_timeout=12,
        workers_lifetime=3600,
        respawn_failed_workers=False,
        access_log=False,
    )


def test_an_empty_variable_keeps_the_default() -> None:
    assert options_from_env({"WEB_WORKERS": "", "WEB_BACKPRESSURE": " "}) == ServerOptions()


def test_arguments_win_over_the_environment() -> None:
    options = parse_options(
        ["--workers", "2", "--no-access-log"], {"WEB_WORKERS": "6", "WEB_ACCESS_LOG": "true"}
    )
    assert options.workers == 2
    assert options.access_log is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "0"], "workers must be at least 1"),
        (["--backlog", "64"], "backlog must be at least 128"),
        (["--workers-kill-timeout", "0"], "kill timeout must be at least 1"),
        (["--workers-lifetime", "30"], "lifetime must be at least 60"),
        (["--port", "70000"], "port must be 1-65535"),
        (["--keepalive-requests", "-1"], "keepalive requests must be 0"),
        (["--statement-timeout", "-1"], "statement timeout must be 0"),
    ],
)
def test_values_granian_would_refuse_or_change_stop_the_launcher(
    argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit, match=message):
        parse_options(argv, {})


def test_a_malformed_variable_is_named() -> None:
    with pytest.raises(SystemExit, match="WEB_WORKERS must be a whole number"):
        options_from_env({"WEB_WORKERS": "four"})
    with pytest.raises(SystemExit, match="WEB_ACCESS_LOG must be true or false"):
        options_from_env({"WEB_ACCESS_LOG": "maybe"})


def test_a_variable_the_command_line_overrides_is_not_read() -> None:
    # A Docker link or a Kubernetes service named "web" injects WEB_PORT=tcp://…
    linked = {"WEB_PORT": "tcp://10.0.0.5:80", "WEB_WORKERS": "2"}
    options = parse_options(["--port", "8000"], linked)
    assert (options.port, options.workers) == (8000, 2)
    with pytest.raises(SystemExit, match="WEB_PORT"):
        parse_options([], linked)


def test_arguments_win_over_the_environment_for_the_switches() -> None:
    env = {"WEB_ACCESS_LOG": "false", "WEB_RESPAWN_FAILED_WORKERS": "false"}
    assert parse_options([], env).access_log is False
    options = parse_options(["--access-log", "--respawn-failed-workers"], env)
    assert (options.access_log, options.respawn_failed_workers) == (True, True)
