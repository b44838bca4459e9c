"""The agent takes the same KAFKA_SECURITY_* variables as the DE-ID worker and the hub."""

from __future__ import annotations

import tomllib
import uuid
from pathlib import Path

import pytest

from site_agent.config import ConfigError, parse_config
from site_agent.relay import producer_config
from tests.site_agent.conftest import SITE_TOML

SASL_ENV = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SSL_CA_LOCATION": "/etc/twinhub/kafka-ca/ca.crt",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "site-t-agent",
    "KAFKA_SASL_PASSWORD": "pw",
}


def _toml(tmp_path: Path, extra: str = "") -> dict[str, object]:
    text = SITE_TOML.format(
        code=f"T{uuid.uuid4().hex[:10]}",
        data=tmp_path,
        idle=300,
        max_bytes=1_048_576,
        fhir="false",
        kafka="127.0.0.1:1",
    )
    return tomllib.loads(text + extra)


def test_environment_security_reaches_the_relay_producer(tmp_path: Path) -> None:
    config = parse_config(_toml(tmp_path), base_env=SASL_ENV)
    conf = producer_config(config.kafka, "agent")
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["ssl.ca.location"] == "/etc/twinhub/kafka-ca/ca.crt"
    assert conf["sasl.username"] == "site-t-agent"
    assert conf["sasl.password"] == "pw"


def test_the_file_producer_table_wins_over_the_environment(tmp_path: Path) -> None:
    extra = '\n[kafka.producer]\n"sasl.username" = "from-file"\n'
    config = parse_config(_toml(tmp_path, extra), base_env=SASL_ENV)
    assert config.kafka.extra["sasl.username"] == "from-file"
    assert config.kafka.extra["sasl.mechanism"] == "SCRAM-SHA-512"


def test_contradictory_environment_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="KAFKA_SASL_MECHANISM"):
        parse_config(_toml(tmp_path), base_env={"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})
