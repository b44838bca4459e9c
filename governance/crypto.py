"""Sensitive fields at rest: AES-256-GCM with associated data and a stored key version.

A stored value is ``aesgcm:<key version>:<base64(nonce || ciphertext || tag)>``. The associated
data is ``<table>.<column>.<primary key>``, so a ciphertext copied into another row or column
fails to decrypt instead of quietly showing another patient's value. Keys come from
``GOVERNANCE_FIELD_KEYS`` (``"1:<base64 32 bytes>,2:<base64 32 bytes>"``, env or ``_FILE``);
new values use the highest version (or ``GOVERNANCE_FIELD_KEY_VERSION``), old ones keep
decrypting until ``manage.py governance rotate-keys`` has re-encrypted them.

Fernet is not used: it is AES-128-CBC with HMAC, and the design requires AES-256-GCM.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models.query_utils import DeferredAttribute

from governance import conf

PREFIX = "aesgcm"
NONCE_BYTES = 12  # the GCM standard nonce; random per value (2^-32 collision risk at 2^32 values)


class DecryptionError(ValueError):
    """A stored value did not decrypt: wrong key, wrong row or column, or altered."""


@dataclass(frozen=True, slots=True)
class Keyring:
    keys: dict[int, bytes]
    current: int

    def key(self, version: int) -> bytes:
        try:
            return self.keys[version]
        except KeyError:
            raise DecryptionError(f"field key version {version} is not configured") from None


def parse_keys(text: str) -> dict[int, bytes]:
    keys: dict[int, bytes] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        version, _, b64 = item.strip().partition(":")
        if not version.isdigit() or not b64:
            raise ImproperlyConfigured("GOVERNANCE_FIELD_KEYS: expected 'version:base64key,...'")
        keys[int(version)] = conf.b64_key(b64, size=32, what=f"field key {version}")
    return keys


def keyring() -> Keyring:
    text = conf.secret("GOVERNANCE_FIELD_KEYS")
    if not text:
        raise ImproperlyConfigured(
            "no field-encryption keys: set GOVERNANCE_FIELD_KEYS or GOVERNANCE_FIELD_KEYS_FILE "
            "(create one with `manage.py governance keygen`)"
        )
    keys = parse_keys(text)
    if not keys:
        raise ImproperlyConfigured("GOVERNANCE_FIELD_KEYS holds no key")
    current = int(conf.setting("GOVERNANCE_FIELD_KEY_VERSION", 0) or max(keys))
    if current not in keys:
        raise ImproperlyConfigured(f"GOVERNANCE_FIELD_KEY_VERSION {current} is not configured")
    return Keyring(keys, current)


def new_key_b64() -> str:
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def encrypt(plaintext: str, associated_data: bytes, *, ring: Keyring | None = None) -> str:
    ring = ring or keyring()
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(ring.key(ring.current)).encrypt(
        nonce, plaintext.encode("utf-8"), associated_data
    )
    return f"{PREFIX}:{ring.current}:{base64.b64encode(nonce + sealed).decode()}"


def token_version(token: str) -> int:
    prefix, version, _ = token.split(":", 2)
    if prefix != PREFIX or not version.isdigit():
        raise DecryptionError("not an encrypted field value")
    return int(version)


def decrypt(token: str, associated_data: bytes, *, ring: Keyring | None = None) -> str:
    ring = ring or keyring()
    try:
        version = token_version(token)
        raw = base64.b64decode(token.split(":", 2)[2], validate=True)
    except (ValueError, binascii.Error):
        raise DecryptionError("malformed encrypted field value") from None
    try:
        plain = AESGCM(ring.key(version)).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated_data
        )
    except InvalidTag:
        raise DecryptionError(
            "field value failed authentication (wrong row, column or key)"
        ) from None
    return plain.decode("utf-8")


@dataclass(frozen=True, slots=True)
class Sealed:
    """A value as loaded from the database, decrypted on first access through the model."""

    token: str


def associated_data(instance: models.Model, field: models.Field[Any, Any]) -> bytes:
    if instance.pk is None:
        raise ValueError(
            f"{type(instance).__name__}.{field.name}: encrypted fields bind to the primary key, "
            "which must be chosen before insert (use a UUID primary key with a default)"
        )
    return f"{instance._meta.db_table}.{field.column}.{instance.pk}".encode()


class _EncryptedAttribute(DeferredAttribute):
    # A data descriptor (it has __set__), so reads always come through __get__ even though
    # Django stores loaded values in the instance __dict__.
    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = value

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, Sealed):
            value = decrypt(value.token, associated_data(instance, self.field))
            instance.__dict__[self.field.attname] = value
        return value


class EncryptedTextField(models.TextField):
    """A text field stored encrypted (AES-256-GCM), bound to its row and column.

    Filtering on it is meaningless (every value has a fresh nonce), and ``QuerySet.update``
    with plain text is refused so nothing reaches the table unencrypted by accident.
    """

    descriptor_class = _EncryptedAttribute

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        return None if value is None else Sealed(value)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = model_instance.__dict__.get(self.attname)
        if value is None or isinstance(value, Sealed):
            return value.token if isinstance(value, Sealed) else None
        return encrypt(str(value), associated_data(model_instance, self))

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, Sealed):
            return value.token
        if isinstance(value, str) and value.startswith(f"{PREFIX}:"):
            return value
        raise ValueError(f"{self.name}: encrypted fields are written through Model.save()")

    def to_python(self, value: Any) -> Any:
        return value


def encrypted_fields() -> Iterator[tuple[type[models.Model], EncryptedTextField]]:
    from django.apps import apps

    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                yield model, field
