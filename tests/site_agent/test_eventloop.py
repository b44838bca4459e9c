"""The event loop the agent runs on: uvloop when installed, the stdlib loop on request."""

from __future__ import annotations

import asyncio
import importlib.util
import tomllib
from pathlib import Path

import pytest

from site_agent.agent import Agent
from site_agent.config import ConfigError, parse_config
from site_agent.eventloop import loop_factory
from site_agent.mllp_client import MllpClient

from .conftest import SITE_TOML, make_config, with_agent
from .hl7msg import adt, msa

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


def test_asyncio_is_the_stdlib_loop() -> None:
    name, factory = loop_factory("asyncio")
    loop = factory()
    try:
        assert name == "asyncio"
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()


def test_auto_takes_uvloop_when_it_is_installed() -> None:
    name, factory = loop_factory("auto")
    loop = factory()
    try:
        assert name == ("uvloop" if HAVE_UVLOOP else "asyncio")
        assert type(loop).__module__.split(".")[0] == name
    finally:
        loop.close()


def test_an_unknown_loop_is_refused() -> None:
    with pytest.raises(ValueError, match="event_loop"):
        loop_factory("trio")


def test_the_config_file_chooses_the_loop(tmp_path: Path) -> None:
    def parse(extra: str) -> str:
        text = SITE_TOML.format(
            code="LOOPS", data=tmp_path, idle=300, max_bytes=1024, fhir="false", kafka="x:1"
        ).replace("[agent]\n", f"[agent]\n{extra}\n")
        return parse_config(tomllib.loads(text), base_env={}).event_loop

    assert parse("") == "auto"
    assert parse('event_loop = "asyncio"') == "asyncio"
    with pytest.raises(ConfigError, match="event_loop"):
        parse('event_loop = "fast"')


@pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop is not installed")
def test_the_agent_answers_mllp_on_uvloop(tmp_path: Path) -> None:
    async def body(agent: Agent) -> list[tuple[str, str]]:
        assert agent.mllp is not None
        assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
        async with MllpClient("127.0.0.1", agent.mllp.port) as c:
            return [
                msa(await c.send(adt("A04", f"U{i}", cls="E", loc="ED", control=f"U{i}")))
                for i in range(3)
            ]

    with asyncio.Runner(loop_factory=loop_factory("uvloop")[1]) as runner:
        acks = runner.run(with_agent(make_config(tmp_path / "d"), body))
    assert acks == [("AA", f"U{i}") for i in range(3)]
