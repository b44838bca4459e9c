"""The control topic: governance's messages to every site (signed policies, erasure
directives). Messages are keyed by site code so one site's control records stay in order.

Publishing happens in ``transaction.on_commit``: a rolled-back change never reaches a site,
and a crash between commit and send is repaired by re-publishing (the policy job re-sends the
policy in force; erasure directives can be re-sent with ``governance erasure-resend``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaException, Producer
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deid import signing
from deid.contracts import topics
from governance import conf

logger = logging.getLogger("governance.control")

ERASURE_TYPE = "control.erasure"
# Signatures over directives carry their own domain, so a signed policy can never be replayed
# as a directive (or the reverse).
ERASURE_SIGNING_DOMAIN = b"regional-twin-hub/erasure-directive/v1\n"


class PublishError(RuntimeError):
    """The broker did not acknowledge a control message."""


def control_topic() -> str:
    return str(conf.setting("GOVERNANCE_CONTROL_TOPIC", "") or topics.CONTROL_TOPIC)


def _producer() -> Producer:
    return Producer(
        {
            "bootstrap.servers": conf.setting("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            "enable.idempotence": True,
            "acks": "all",
            "client.id": "twinhub-governance",
            "message.timeout.ms": 15000,
            # TLS/SASL from the host project's settings (the hub builds it with
            # deid.kafka_security from KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, ...).
            **(conf.setting("KAFKA_CLIENT_CONFIG", None) or {}),
        }
    )


def publish(*, site_code: str, value: bytes, headers: Mapping[str, str] | None = None) -> None:
    """Send one control message and wait for the broker's acknowledgement."""
    errors: list[Any] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(err)

    producer = _producer()
    try:
        producer.produce(
            control_topic(),
            key=topics.record_key(site_code),
            value=value,
            headers=list((headers or {}).items()),
            on_delivery=delivered,
        )
        remaining = producer.flush(20)
    except KafkaException as exc:
        raise PublishError(str(exc)) from exc
    if errors or remaining:
        raise PublishError(f"control message for {site_code} not acknowledged: {errors}")


def erasure_directive(
    *, directive_id: str, erasure_id: str, site_code: str, surrogate_id: str, due_at: str
) -> dict[str, Any]:
    """An erasure directive: the site destroys the patient's keys and registry entry
    (crypto-shredding) and confirms through the site API."""
    return {
        "record_type": ERASURE_TYPE,
        "schema_version": 1,
        "directive_id": directive_id,
        "erasure_id": erasure_id,
        "site_codes": [site_code],
        "surrogate_id": surrogate_id,
        "due_at": due_at,
        "confirm": f"/api/v1/governance/site/erasure-requests/{erasure_id}/confirm/",
    }


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode()


def _signed_bytes(directive: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in directive.items() if k != "signature"}
    return ERASURE_SIGNING_DOMAIN + encode(body)


def sign_directive(directive: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """The directive with an Ed25519 signature by the governance key: a site destroys keys
    only on a directive governance signed (a forged one would be unrecoverable data loss)."""
    signed = dict(directive)
    signed["signature"] = {
        "algorithm": "Ed25519",
        "key_id": signing.key_id_for(key),
        "value": base64.b64encode(key.sign(_signed_bytes(directive))).decode(),
    }
    return signed


class DirectiveError(ValueError):
    """An erasure directive that is unsigned, altered or signed by an untrusted key."""


def verify_directive(
    data: bytes | Mapping[str, Any], trusted: signing.PublicKeys
) -> dict[str, Any]:
    """For sites: the directive if governance signed it, else ``DirectiveError``."""
    try:
        directive = dict(json.loads(data)) if isinstance(data, bytes) else dict(data)
    except (ValueError, TypeError):
        raise DirectiveError("not a JSON object") from None
    sig = directive.get("signature")
    if directive.get("record_type") != ERASURE_TYPE or not isinstance(sig, dict):
        raise DirectiveError("not a signed erasure directive")
    key = signing.public_keys_by_id(trusted).get(str(sig.get("key_id", "")))
    if key is None:
        raise DirectiveError("signed by a key that is not trusted")
    try:
        key.verify(
            base64.b64decode(str(sig.get("value", "")), validate=True), _signed_bytes(directive)
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise DirectiveError("bad signature (altered or not signed by governance)") from None
    return directive
