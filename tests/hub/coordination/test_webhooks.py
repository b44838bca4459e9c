"""Signed webhooks: HMAC-SHA256 over timestamp and body, checked in constant time."""

from __future__ import annotations

from hub.coordination.webhooks import sign, verify

SECRET = b"a-shared-webhook-secret"
BODY = b'{"key":"stale:H","severity":"warning"}'


def test_a_signature_verifies_and_names_its_timestamp() -> None:
    header = sign(SECRET, BODY, 1_800_000_000)
    assert header.startswith("t=1800000000,v1=")
    assert verify(SECRET, BODY, header, now=1_800_000_100)


def test_a_changed_body_wrong_secret_or_old_timestamp_fails() -> None:
    header = sign(SECRET, BODY, 1_800_000_000)
    assert not verify(SECRET, BODY + b" ", header, now=1_800_000_000)
    assert not verify(b"another-secret", BODY, header, now=1_800_000_000)
    assert not verify(SECRET, BODY, header, now=1_800_000_000 + 301)  # replayed later
    assert not verify(SECRET, BODY, "t=abc,v1=00", now=1_800_000_000)
    assert not verify(SECRET, BODY, "", now=1_800_000_000)
