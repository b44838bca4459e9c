"""Ed25519 keys: the site's envelope-signing key and governance's policy-signing key.

Keys travel as base64 of their raw 32 bytes. A key's `key_id` is the first 16 hex digits of
the SHA-256 of its raw public key, so a verifier can pick the right key during a rotation.
Secrets come from the environment (`NAME`, or a file named by `NAME_FILE`, as Kubernetes
secrets are mounted), never from the repository.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

SITE_SIGNING_KEY_ENV = "DEID_SITE_SIGNING_KEY"

PublicKeyLike = Ed25519PublicKey | str | bytes
PublicKeys = PublicKeyLike | Mapping[str, PublicKeyLike] | Sequence[PublicKeyLike]


class KeyFormatError(ValueError):
    """A key is not base64 of 32 raw bytes."""


def b64decode_strict(text: str | bytes) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError("not valid base64") from None


def generate_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_b64(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


def public_key_raw(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_b64(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    return base64.b64encode(public_key_raw(key)).decode()


def key_id_for(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    return hashlib.sha256(public_key_raw(key)).hexdigest()[:16]


def load_private_key(text: str | bytes) -> Ed25519PrivateKey:
    raw = b64decode_strict(text.strip())
    if len(raw) != 32:
        raise KeyFormatError("an Ed25519 private key is 32 raw bytes")
    return Ed25519PrivateKey.from_private_bytes(raw)


def load_public_key(key: PublicKeyLike) -> Ed25519PublicKey:
    if isinstance(key, Ed25519PublicKey):
        return key
    raw = key if isinstance(key, bytes) and len(key) == 32 else b64decode_strict(key.strip())
    if len(raw) != 32:
        raise KeyFormatError("an Ed25519 public key is 32 raw bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_keys_by_id(keys: PublicKeys) -> dict[str, Ed25519PublicKey]:
    """Normalise one key or many (a mapping's keys are ignored; ids are recomputed)."""
    many: Iterable[PublicKeyLike]
    if isinstance(keys, Ed25519PublicKey | str | bytes):
        many = [keys]
    elif isinstance(keys, Mapping):
        many = keys.values()
    else:
        many = keys
    loaded = [load_public_key(k) for k in many]
    return {key_id_for(k): k for k in loaded}


def secret_from_env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """`NAME` or the content of the file named by `NAME_FILE`; None when neither is set."""
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value:
        return value.strip()
    path = env.get(f"{name}_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return None


def site_signing_key_from_env(environ: Mapping[str, str] | None = None) -> Ed25519PrivateKey:
    text = secret_from_env(SITE_SIGNING_KEY_ENV, environ)
    if text is None:
        raise KeyFormatError(
            f"no site signing key: set {SITE_SIGNING_KEY_ENV} or {SITE_SIGNING_KEY_ENV}_FILE "
            "(create one with `python -m deid keygen`)"
        )
    return load_private_key(text)
