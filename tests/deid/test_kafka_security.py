"""The one builder of Kafka TLS/SASL settings shared by the DE-ID worker, the agent and the hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from deid.kafka_security import KafkaSecurityError, kafka_security_config


def test_no_variables_give_a_plain_local_client() -> None:
    assert kafka_security_config({}) == {}
    assert kafka_security_config({"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}) == {}


def test_sasl_ssl_with_a_password_file_gives_librdkafka_settings(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret-from-a-secret\n", encoding="utf-8")
    config = kafka_security_config(
        {
            "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "KAFKA_SSL_CA_LOCATION": "/etc/twinhub/kafka-ca/ca.crt",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "hub-consumer",
            "KAFKA_SASL_PASSWORD_FILE": str(password),
        }
    )
    assert config == {
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": "/etc/twinhub/kafka-ca/ca.crt",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "hub-consumer",
        "sasl.password": "s3cret-from-a-secret",
    }


def test_the_password_variable_wins_over_the_file(tmp_path: Path) -> None:
    config = kafka_security_config(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "PLAIN",
            "KAFKA_SASL_USERNAME": "u",
            "KAFKA_SASL_PASSWORD": "direct",
            "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "absent"),
        }
    )
    assert config["sasl.password"] == "direct"


def test_mutual_tls_passes_certificate_and_key() -> None:
    config = kafka_security_config(
        {
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CA_LOCATION": "/ca.crt",
            "KAFKA_SSL_CERTIFICATE_LOCATION": "/client.crt",
            "KAFKA_SSL_KEY_LOCATION": "/client.key",
        }
    )
    assert config["ssl.certificate.location"] == "/client.crt"
    assert config["ssl.key.location"] == "/client.key"
    assert config["security.protocol"] == "SSL"
    # Host name verification stays librdkafka's default (on): nothing may switch it off here.
    assert "ssl.endpoint.identification.algorithm" not in config


def test_a_client_certificate_mounted_as_a_secret_file_is_used() -> None:
    config = kafka_security_config(
        {
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CERTIFICATE_FILE": "/var/run/secrets/twinhub/kafka-ssl-certificate/tls.crt",
            "KAFKA_SSL_KEY_FILE": "/var/run/secrets/twinhub/kafka-ssl-key/tls.key",
        }
    )
    assert config["ssl.certificate.location"].endswith("kafka-ssl-certificate/tls.crt")
    assert config["ssl.key.location"].endswith("kafka-ssl-key/tls.key")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "must be one of"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "GSSAPI",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD": "p",
            },
            "KAFKA_SASL_MECHANISM",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "PLAIN",
                "KAFKA_SASL_USERNAME": "u",
            },
            "KAFKA_SASL_PASSWORD",
        ),
        ({"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}, "is PLAINTEXT"),
        ({"KAFKA_SSL_CA_LOCATION": "/ca.crt"}, "TLS settings"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTIFICATE_LOCATION": "/c.crt"},
            "both",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "PLAIN",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD_FILE": "/nonexistent/password",
            },
            "KAFKA_SASL_PASSWORD_FILE",
        ),
    ],
)
def test_contradictory_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(KafkaSecurityError, match=message):
        kafka_security_config(env)


def test_the_deid_worker_takes_the_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from deid import worker

    captured: dict[str, object] = {}

    class Stop(Exception):
        pass

    def fake_worker(config: worker.WorkerConfig, **_: object) -> None:
        captured["overrides"] = config.kafka_overrides
        captured["metrics"] = (config.metrics_port, config.metrics_host)
        raise Stop

    monkeypatch.setattr(worker, "DeidWorker", fake_worker)
    monkeypatch.setattr(worker, "site_signing_key_from_env", lambda: None)
    for name, value in {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "KAFKA_SASL_USERNAME": "site-x-deid",
        "KAFKA_SASL_PASSWORD": "pw",
        "METRICS_PORT": "9101",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DEID_KEYSTORE", raising=False)
    from deid.cli import build_parser

    args = build_parser().parse_args(["run", "--site", "STMARYS"])
    with pytest.raises(Stop):
        worker.run_from_args(args)
    assert captured["overrides"] == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "site-x-deid",
        "sasl.password": "pw",
    }
    assert captured["metrics"] == (9101, "0.0.0.0")  # noqa: S104 - a pod is scraped on its IP


def test_the_deid_worker_refuses_to_start_with_contradictory_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from deid import worker
    from deid.cli import build_parser

    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    args = build_parser().parse_args(["run", "--site", "STMARYS"])
    assert worker.run_from_args(args) == 2
