"""Fixtures of the DE-ID tests: keys, signed policies, a key store, Kafka helpers."""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deid.keystore import MasterKeyRing, PatientKeyStore
from deid.policy import Policy, default_policy_document, parse_policy, sign_policy
from deid.signing import generate_signing_key, private_key_b64, public_key_b64
from deid.testing.synthetic import SyntheticSite

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def governance_key() -> Ed25519PrivateKey:
    return generate_signing_key()


@pytest.fixture(scope="session")
def site_key() -> Ed25519PrivateKey:
    return generate_signing_key()


@pytest.fixture
def policy_doc() -> dict[str, Any]:
    return copy.deepcopy(default_policy_document())


@pytest.fixture
def policy(policy_doc: dict[str, Any]) -> Policy:
    return parse_policy(policy_doc)


def k1_policy_doc(version: int = 1) -> dict[str, Any]:
    """Regional operations only, k = 1: every flow event comes out exactly once (for the
    exactly-once tests, which compare input and output event ids)."""
    doc = copy.deepcopy(default_policy_document())
    doc["version"] = version
    ops = doc["records"]["flow"]["regional_operations"]
    ops["k"] = 1
    doc["records"]["flow"] = {"regional_operations": ops}
    doc["records"]["census"] = {
        "regional_operations": doc["records"]["census"]["regional_operations"]
    }
    return doc


@pytest.fixture
def master_key() -> str:
    return MasterKeyRing.generate_b64()


@pytest.fixture
def keystore(tmp_path: Path, master_key: str) -> Iterator[PatientKeyStore]:
    store = PatientKeyStore(tmp_path / "keys.sqlite", master_key)
    yield store
    store.close()


@pytest.fixture
def site_code() -> str:
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def synthetic(site_code: str, keystore: PatientKeyStore) -> SyntheticSite:
    return SyntheticSite(site_code, seed=7, keystore=keystore)


@pytest.fixture
def worker_env(
    site_key: Ed25519PrivateKey,
    governance_key: Ed25519PrivateKey,
    master_key: str,
    kafka_bootstrap: str,
) -> dict[str, str]:
    """Environment of a worker subprocess: keys from the environment, as in production."""
    env = dict(os.environ)
    env.update(
        DEID_SITE_SIGNING_KEY=private_key_b64(site_key),
        DEID_GOVERNANCE_PUBLIC_KEYS=public_key_b64(governance_key),
        DEID_MASTER_KEY=master_key,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.fixture
def write_signed_policy(
    tmp_path: Path, governance_key: Ed25519PrivateKey
) -> Callable[[dict[str, Any]], Path]:
    def write(doc: dict[str, Any]) -> Path:
        path = tmp_path / f"policy-{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps(sign_policy(doc, governance_key)))
        return path

    return write
