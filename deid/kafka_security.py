"""TLS and SASL settings of every Kafka client, from the environment, in librdkafka's names.

One builder for the whole platform: the DE-ID worker, the site agent and the hub (its
consumer, its producers, governance's control-topic producer, the readiness probe) all call
it, so a cluster that needs SASL_SSL is configured once, with the same variables, in every
process. It lives here because ``deid`` is the package every other one may import.

    KAFKA_SECURITY_PROTOCOL          PLAINTEXT (default), SSL, SASL_PLAINTEXT, SASL_SSL
    KAFKA_SSL_CA_LOCATION            CA bundle that signed the brokers' certificates
    KAFKA_SSL_CERTIFICATE_LOCATION   client certificate (mutual TLS), with the key below;
                                     or KAFKA_SSL_CERTIFICATE_FILE
    KAFKA_SSL_KEY_LOCATION           client private key (mutual TLS); or KAFKA_SSL_KEY_FILE
    KAFKA_SASL_MECHANISM             PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    KAFKA_SASL_USERNAME              the process's principal
    KAFKA_SASL_PASSWORD / _FILE      its password; _FILE is how Kubernetes mounts a Secret

librdkafka verifies the broker's host name against its certificate by default
(``ssl.endpoint.identification.algorithm=https``); nothing here turns that off.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = ["KafkaSecurityError", "kafka_security_config"]

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

# Environment variable -> librdkafka property, for the settings that are plain values.
_PLAIN_SETTINGS = {
    "KAFKA_SSL_CA_LOCATION": "ssl.ca.location",
    "KAFKA_SSL_CERTIFICATE_LOCATION": "ssl.certificate.location",
    "KAFKA_SSL_KEY_LOCATION": "ssl.key.location",
    "KAFKA_SASL_MECHANISM": "sasl.mechanism",
    "KAFKA_SASL_USERNAME": "sasl.username",
}


# The same paths under the NAME_FILE names the Helm charts give a mounted Secret (secretFiles
# KAFKA_SSL_CERTIFICATE and KAFKA_SSL_KEY): the private key is then mounted, read-only, only
# into the processes that list it, like every other secret.
_PATH_ALIASES = {
    "ssl.certificate.location": "KAFKA_SSL_CERTIFICATE_FILE",
    "ssl.key.location": "KAFKA_SSL_KEY_FILE",
}


class KafkaSecurityError(ValueError):
    """The Kafka security variables contradict each other or name an unknown value."""


def _password(env: Mapping[str, str]) -> str | None:
    value = env.get("KAFKA_SASL_PASSWORD")
    if value:
        return value
    path = env.get("KAFKA_SASL_PASSWORD_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise KafkaSecurityError(f"KAFKA_SASL_PASSWORD_FILE: {exc}") from exc
    return None


def kafka_security_config(env: Mapping[str, str]) -> dict[str, str]:
    """librdkafka settings for ``env`` (pass ``os.environ``); empty for a plain local broker.

    Refuses combinations that would otherwise fail later and less clearly (at the first
    connection, or by silently connecting without the security that was asked for).
    """
    protocol = (env.get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").strip().upper()
    if protocol not in PROTOCOLS:
        raise KafkaSecurityError(
            f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}, not {protocol!r}"
        )
    config = {prop: env[name].strip() for name, prop in _PLAIN_SETTINGS.items() if env.get(name)}
    for prop, alias in _PATH_ALIASES.items():
        if prop not in config and env.get(alias):
            config[prop] = env[alias].strip()
    sasl = protocol.startswith("SASL_")
    tls = protocol.endswith("SSL")
    password = _password(env)
    if sasl:
        mechanism = config.get("sasl.mechanism", "")
        if mechanism not in SASL_MECHANISMS:
            raise KafkaSecurityError(
                f"{protocol} needs KAFKA_SASL_MECHANISM, one of {', '.join(SASL_MECHANISMS)}"
            )
        if not config.get("sasl.username") or not password:
            raise KafkaSecurityError(
                f"{protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD(_FILE)"
            )
        config["sasl.password"] = password
    elif any(prop.startswith("sasl.") for prop in config) or password:
        raise KafkaSecurityError(
            f"SASL settings are given but KAFKA_SECURITY_PROTOCOL is {protocol}: they would be "
            "ignored (use SASL_SSL)"
        )
    if not tls and any(prop.startswith("ssl.") for prop in config):
        raise KafkaSecurityError(
            f"TLS settings are given but KAFKA_SECURITY_PROTOCOL is {protocol}: they would be "
            "ignored (use SSL or SASL_SSL)"
        )
    if ("ssl.certificate.location" in config) != ("ssl.key.location" in config):
        raise KafkaSecurityError(
            "mutual TLS needs both KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION"
        )
    if protocol != "PLAINTEXT":
        config["security.protocol"] = protocol
    return config
