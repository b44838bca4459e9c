"""Signed webhooks: HMAC-SHA256 over the timestamp and the exact body bytes.

The header is ``X-TwinHub-Signature: t=<unix seconds>,v1=<hex digest>``, the digest of
``b"<t>." + body``, the scheme Stripe and Slack use: the receiver recomputes it with the shared
secret, compares in constant time, and refuses a timestamp older than its tolerance, so a
captured request cannot be replayed later. Pure: no network here (the Celery task posts).
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-TwinHub-Signature"


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: bytes, body: bytes, header: str, now: int, tolerance_seconds: int = 300) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and is recent enough."""
    parts: dict[str, str] = {}
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(name, value)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
