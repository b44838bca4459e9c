"""The governance Ed25519 signing key (policies, audit checkpoints), from the environment.

``GOVERNANCE_SIGNING_KEY`` (or ``GOVERNANCE_SIGNING_KEY_FILE``): base64 of the raw 32-byte
private key, the format of ``deid.signing``. DE-ID workers trust its public key
(``manage.py governance public-key`` prints it).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ImproperlyConfigured

from deid import signing
from governance import conf

SIGNING_KEY_SETTING = "GOVERNANCE_SIGNING_KEY"


def signing_key() -> Ed25519PrivateKey:
    text = conf.secret(SIGNING_KEY_SETTING)
    if not text:
        raise ImproperlyConfigured(
            f"no governance signing key: set {SIGNING_KEY_SETTING} or {SIGNING_KEY_SETTING}_FILE "
            "(create one with `manage.py governance keygen`)"
        )
    try:
        return signing.load_private_key(text)
    except signing.KeyFormatError as exc:
        raise ImproperlyConfigured(f"{SIGNING_KEY_SETTING}: {exc}") from None


def key_id() -> str:
    return signing.key_id_for(signing_key())


def public_key_b64() -> str:
    return signing.public_key_b64(signing_key())
