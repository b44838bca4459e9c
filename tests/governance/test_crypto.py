"""Sensitive fields at rest: AES-256-GCM bound to row and column, key versions, rotation."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from governance import crypto
from governance.erasure import surrogate_digest
from governance.models import ErasureRequest

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db,
    pytest.mark.usefixtures("governance_keys"),
]


def new_request(surrogate: str = "sg-crypto-0001", **fields: Any) -> ErasureRequest:
    now = timezone.now()
    erasure = ErasureRequest(
        hospital_id=1,
        site_code="SITE-C",
        surrogate_id=surrogate,
        surrogate_digest=surrogate_digest(surrogate),
        origin="board",
        received_at=now,
        due_at=now,
        **fields,
    )
    erasure.save(force_insert=True)
    return erasure


def stored(erasure: ErasureRequest, column: str = "surrogate_id") -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM governance_erasurerequest WHERE id = %s",  # noqa: S608
            [erasure.pk],
        )
        row = cursor.fetchone()
    assert row is not None
    return str(row[0])


def test_values_are_stored_encrypted_with_their_key_version() -> None:
    erasure = new_request(reason="synthetic patient asked by letter")
    raw = stored(erasure)
    assert raw.startswith("aesgcm:1:")
    assert "sg-crypto-0001" not in raw
    fresh = ErasureRequest.objects.get(pk=erasure.pk)
    assert fresh.surrogate_id == "sg-crypto-0001"
    assert fresh.reason == "synthetic patient asked by letter"


def test_a_ciphertext_moved_to_another_row_or_column_does_not_decrypt() -> None:
    a, b = new_request("sg-crypto-A"), new_request("sg-crypto-B")
    ErasureRequest.objects.filter(pk=b.pk).update(surrogate_id=stored(a))
    with pytest.raises(crypto.DecryptionError):
        _ = ErasureRequest.objects.get(pk=b.pk).surrogate_id
    ErasureRequest.objects.filter(pk=a.pk).update(reason=stored(a))
    with pytest.raises(crypto.DecryptionError):
        _ = ErasureRequest.objects.get(pk=a.pk).reason


def test_plain_text_never_reaches_the_table_through_update() -> None:
    erasure = new_request()
    with pytest.raises(ValueError, match="encrypted"):
        ErasureRequest.objects.filter(pk=erasure.pk).update(surrogate_id="in the clear")


def test_rotation_re_encrypts_under_the_new_key(settings: Any) -> None:
    erasure = new_request()
    old_keys = settings.GOVERNANCE_FIELD_KEYS
    settings.GOVERNANCE_FIELD_KEYS = f"{old_keys},2:{base64.b64encode(os.urandom(32)).decode()}"
    assert ErasureRequest.objects.get(pk=erasure.pk).surrogate_id == "sg-crypto-0001"
    call_command("governance", "rotate-keys")
    assert stored(erasure).startswith("aesgcm:2:")
    # The old key can now be retired.
    settings.GOVERNANCE_FIELD_KEYS = settings.GOVERNANCE_FIELD_KEYS.split(",", 1)[1]
    assert ErasureRequest.objects.get(pk=erasure.pk).surrogate_id == "sg-crypto-0001"


def test_missing_or_malformed_keys_are_configuration_errors(settings: Any) -> None:
    settings.GOVERNANCE_FIELD_KEYS = ""
    with pytest.raises(ImproperlyConfigured):
        crypto.keyring()
    settings.GOVERNANCE_FIELD_KEYS = "1:" + base64.b64encode(b"short").decode()
    with pytest.raises(ImproperlyConfigured, match="32"):
        crypto.keyring()
