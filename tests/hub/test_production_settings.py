"""Production settings from the environment: Kafka TLS/SASL for every hub client, PostgreSQL TLS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from hub.census.consumer import consumer_config, producer_config

ROOT = Path(__file__).resolve().parents[2]
SECURITY = {"security.protocol": "SSL", "ssl.ca.location": "/ca.crt"}


@override_settings(KAFKA_CLIENT_CONFIG=SECURITY)
def test_the_consumer_and_its_producer_use_the_shared_security_settings() -> None:
    consumer = consumer_config(bootstrap="b:9093", group="g")
    producer = producer_config(bootstrap="b:9093")
    for conf in (consumer, producer):
        assert conf["security.protocol"] == "SSL"
        assert conf["ssl.ca.location"] == "/ca.crt"
    # The consumer's own guarantees are not something the security settings can undo.
    assert consumer["enable.auto.commit"] is False


@override_settings(KAFKA_CLIENT_CONFIG=SECURITY)
def test_the_governance_control_producer_uses_them_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from governance import control

    seen: dict[str, object] = {}
    monkeypatch.setattr(control, "Producer", lambda conf: seen.update(conf))
    control._producer()
    assert seen["security.protocol"] == "SSL"
    assert seen["enable.idempotence"] is True


def _settings_in_subprocess(extra: dict[str, str], expression: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **extra}
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "hub.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_kafka_sasl_from_the_environment_reaches_the_settings(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("from-a-secret\n", encoding="utf-8")
    result = _settings_in_subprocess(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "hub",
            "KAFKA_SASL_PASSWORD_FILE": str(password),
        },
        "sorted(settings.KAFKA_CLIENT_CONFIG.items())",
    )
    assert result.returncode == 0, result.stderr
    assert "('sasl.password', 'from-a-secret')" in result.stdout
    assert "('security.protocol', 'SASL_SSL')" in result.stdout


def test_verify_full_passes_sslmode_and_the_ca_to_libpq(tmp_path: Path) -> None:
    result = _settings_in_subprocess(
        {"DATABASE_SSLMODE": "verify-full", "DATABASE_SSLROOTCERT": str(tmp_path / "ca.crt")},
        "settings.DATABASES['default']['OPTIONS']",
    )
    assert result.returncode == 0, result.stderr
    assert "'sslmode': 'verify-full'" in result.stdout
    assert f"'sslrootcert': '{tmp_path / 'ca.crt'}'" in result.stdout


@pytest.mark.postgres
def test_a_statement_timeout_reaches_every_connection_of_the_process() -> None:
    result = _settings_in_subprocess(
        {"DATABASE_STATEMENT_TIMEOUT": "30"},
        "settings.DATABASES['default']['OPTIONS']['options'], __import__('django.db').db"
        ".connection.cursor().execute('SHOW statement_timeout').fetchone()[0]",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "-c statement_timeout=30000 30s"
    none = _settings_in_subprocess(
        {"DATABASE_STATEMENT_TIMEOUT": "0"}, "settings.DATABASES['default']['OPTIONS']"
    )
    assert "statement_timeout" not in none.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"DATABASE_STATEMENT_TIMEOUT": "30s"}, "DATABASE_STATEMENT_TIMEOUT must be whole seconds"),
        ({"DATABASE_STATEMENT_TIMEOUT": "-1"}, "DATABASE_STATEMENT_TIMEOUT must be 0"),
        ({"DATABASE_SSLMODE": "verify-full"}, "needs DATABASE_SSLROOTCERT"),
        ({"DATABASE_SSLMODE": "sometimes"}, "DATABASE_SSLMODE must be one of"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
    ],
)
def test_contradictory_production_settings_stop_the_start(
    extra: dict[str, str], message: str
) -> None:
    result = _settings_in_subprocess(extra, "'loaded'")
    assert result.returncode != 0
    assert message in result.stderr


def test_json_logs_reach_the_settings_and_celery_leaves_them_alone() -> None:
    result = _settings_in_subprocess(
        {"LOG_FORMAT": "json"},
        "settings.LOGGING['handlers']['console']['formatter'], "
        "settings.CELERY_WORKER_HIJACK_ROOT_LOGGER, settings.CELERY_WORKER_REDIRECT_STDOUTS",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "json False False"
    plain = _settings_in_subprocess({"LOG_FORMAT": ""}, "settings.LOG_FORMAT")
    assert plain.stdout.strip() == "plain"
