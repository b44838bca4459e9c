"""`python -m deid transform / verify / keygen / sign-policy / schemas` as documented."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deid.keystore import PatientKeyStore
from deid.signing import public_key_b64
from deid.testing.synthetic import SyntheticSite
from tests.deid.conftest import ROOT

SAMPLE = ROOT / "deid" / "samples" / "raw_plain.jsonl"


def deid(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deid", *args],
        cwd=ROOT,
        env=env or {**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def env(governance_key: Ed25519PrivateKey, master_key: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DEID_GOVERNANCE_PUBLIC_KEYS": public_key_b64(governance_key),
        "DEID_MASTER_KEY": master_key,
    }


def test_transform_then_verify_a_plaintext_file(
    tmp_path: Path,
    env: dict[str, str],
    policy_doc: dict[str, Any],
    write_signed_policy: Callable[[dict[str, Any]], Path],
) -> None:
    policy = write_signed_policy(policy_doc)
    out = tmp_path / "out.jsonl"
    done = deid(
        "transform", "--policy", str(policy), "--in", str(SAMPLE), "--out", str(out), env=env
    )
    assert done.returncode == 0, done.stderr
    assert "released" in done.stderr
    lines = out.read_text().splitlines()
    assert lines
    raw = SAMPLE.read_text()
    for record in (json.loads(line) for line in raw.splitlines()):
        phi = record.get("phi")
        if phi:
            for key in ("name", "mrn", "ssn", "phone", "email", "address"):
                assert phi[key] not in out.read_text()
    done = deid("verify", "--policy", str(policy), str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK")


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda r: r.update(zip3="036"), "zip3"),
        (lambda r: r.update(age_band="85-94"), "age_band"),
        (lambda r: r.update(audience="public_benchmarks", surrogate_id="sg-x"), "surrogate_id"),
        (lambda r: r.update(occurred="2025-03-02T10Z"), "occurred"),
        (lambda r: r.update(policy_version=99), "policy_version"),
        (lambda r: r.update(unit_code="Pat 123-45-6789"), "ssn"),
    ],
)
def test_verify_fails_with_reasons(
    tmp_path: Path,
    env: dict[str, str],
    policy_doc: dict[str, Any],
    write_signed_policy: Callable[[dict[str, Any]], Path],
    tamper: Callable[[dict[str, Any]], None],
    reason: str,
) -> None:
    policy = write_signed_policy(policy_doc)
    out = tmp_path / "out.jsonl"
    assert (
        deid(
            "transform", "--policy", str(policy), "--in", str(SAMPLE), "--out", str(out), env=env
        ).returncode
        == 0
    )
    records = [json.loads(line) for line in out.read_text().splitlines()]
    flow = next(
        r
        for r in records
        if r["record_type"] == "regional.flow" and r["audience"] == "regional_operations"
    )
    tamper(flow)
    out.write_text("".join(json.dumps(r) + "\n" for r in records))
    done = deid("verify", "--policy", str(policy), str(out), env=env)
    assert done.returncode == 1
    assert "FAILED" in done.stderr
    assert reason in done.stderr


def test_unsigned_policy_needs_an_explicit_preview_flag(
    tmp_path: Path, env: dict[str, str]
) -> None:
    template = ROOT / "deid" / "policies" / "default.json"
    out = tmp_path / "out.jsonl"
    refused = deid(
        "transform", "--policy", str(template), "--in", str(SAMPLE), "--out", str(out), env=env
    )
    assert refused.returncode == 2
    assert "policy refused" in refused.stderr
    preview = deid(
        "transform",
        "--policy",
        str(template),
        "--allow-unsigned",
        "--in",
        str(SAMPLE),
        "--out",
        str(out),
        env=env,
    )
    assert preview.returncode == 0, preview.stderr


def test_encrypted_events_with_the_site_key_store(
    tmp_path: Path,
    env: dict[str, str],
    keystore: PatientKeyStore,
    policy_doc: dict[str, Any],
    write_signed_policy: Callable[[dict[str, Any]], Path],
) -> None:
    site = SyntheticSite("DEMO", seed=5, keystore=keystore)
    raw = tmp_path / "raw.jsonl"
    events = site.flow_events(site.patients(100), 400)
    raw.write_text("".join(e.encode().decode() + "\n" for e in events))
    out = tmp_path / "out.jsonl"
    policy = write_signed_policy(policy_doc)
    without = deid(
        "transform", "--policy", str(policy), "--in", str(raw), "--out", str(out), env=env
    )
    assert without.returncode == 1
    assert "needs --keystore" in without.stderr
    done = deid(
        "transform", "--policy", str(policy), "--keystore", str(keystore.path),
        "--in", str(raw), "--out", str(out), env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    bands = {json.loads(line).get("age_band") for line in out.read_text().splitlines()}
    assert bands - {None}  # demographics came from the decrypted PHI


def test_keygen_and_sign_policy(tmp_path: Path, policy_doc: dict[str, Any]) -> None:
    done = deid("keygen", "--out", str(tmp_path), "--name", "governance")
    assert done.returncode == 0
    assert "public_key:" in done.stdout
    assert (tmp_path / "governance.key").stat().st_mode & 0o077 == 0
    body = tmp_path / "policy.json"
    body.write_text(json.dumps(policy_doc))
    signed = tmp_path / "signed.json"
    done = deid(
        "sign-policy", str(body), "--key", str(tmp_path / "governance.key"), "--out", str(signed)
    )
    assert done.returncode == 0, done.stderr
    public = (tmp_path / "governance.pub").read_text().strip()
    out = tmp_path / "out.jsonl"
    done = deid(
        "transform", "--policy", str(signed), "--governance-key", public,
        "--in", str(SAMPLE), "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    master = deid("keygen", "--master")
    assert len(master.stdout.strip()) == 44


def test_schemas_command_checks_drift(tmp_path: Path) -> None:
    assert deid("schemas", "--check", str(ROOT / "docs" / "schemas")).returncode == 0
    assert deid("schemas", "--check", str(tmp_path)).returncode == 1
    assert deid("schemas", str(tmp_path)).returncode == 0
    assert deid("schemas", "--check", str(tmp_path)).returncode == 0


def test_rotate_master_key_command(
    tmp_path: Path, keystore: PatientKeyStore, master_key: str
) -> None:
    from deid.keystore import MasterKeyRing

    surrogate = keystore.surrogate_for("MR00000001")
    sealed = keystore.encrypt_phi(surrogate, {"mrn": "MR00000001"})
    new = MasterKeyRing.generate_b64()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DEID_MASTER_KEY": f"2:{new},1:{master_key}"}
    done = deid("rotate-master-key", "--keystore", str(keystore.path), env=env)
    assert done.returncode == 0, done.stderr
    assert "re-wrapped 2 rows" in done.stdout
    only_new = PatientKeyStore(keystore.path, f"2:{new}")
    assert only_new.decrypt_phi(surrogate, *sealed)["mrn"] == "MR00000001"
