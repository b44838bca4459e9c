"""The site key store: random surrogates, AES-256-GCM bound to rows, rotation, erasure."""

from __future__ import annotations

import base64
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from deid.contracts import PatientPHI, Sex
from deid.keystore import (
    KeyDestroyed,
    KeyStoreError,
    MasterKeyRing,
    PatientKeyStore,
    UnknownKey,
)

PHI: dict[str, Any] = {
    "mrn": "MR00001234",
    "name": "Avery Quill",
    "birth_date": date(1950, 3, 12),
    "sex": "female",
    "zip": "02139",
    "phone": "(617) 555-0142",
}


@pytest.fixture
def master() -> str:
    return MasterKeyRing.generate_b64()


@pytest.fixture
def store(tmp_path: Path, master: str) -> PatientKeyStore:
    return PatientKeyStore(tmp_path / "keys.sqlite", master)


def test_surrogates_are_random_and_stable(
    store: PatientKeyStore, tmp_path: Path, master: str
) -> None:
    s = store.surrogate_for("MR00001234")
    assert s == store.surrogate_for("MR00001234")
    assert "1234" not in s
    # Another store with the same master key gives a different surrogate for the same MRN:
    # the surrogate is not a function of the MRN (164.514(c)).
    other = PatientKeyStore(tmp_path / "other.sqlite", master)
    assert other.surrogate_for("MR00001234") != s
    # ... and the same store reopened keeps its registry.
    assert PatientKeyStore(tmp_path / "keys.sqlite", master).surrogate_for("MR00001234") == s


def test_batch_surrogates(store: PatientKeyStore) -> None:
    mrns = [f"MR{n:08d}" for n in range(500)]
    surrogates = store.surrogates_for(mrns)
    assert len(set(surrogates)) == 500
    assert store.surrogates_for(mrns[:10]) == surrogates[:10]


def test_phi_round_trips_and_is_not_readable_in_the_file(store: PatientKeyStore) -> None:
    s = store.surrogate_for(PHI["mrn"])
    key_id, ct = store.encrypt_phi(s, PHI)
    assert store.decrypt_phi(s, key_id, ct)["name"] == "Avery Quill"
    assert store.decrypt_patient(s, key_id, ct).birth_date == date(1950, 3, 12)
    assert store.decrypt_patient(s, key_id, ct).sex is Sex.FEMALE
    raw = store.path.read_bytes() + Path(f"{store.path}-wal").read_bytes()
    assert b"MR00001234" not in raw
    assert b"Avery" not in raw
    key_id2, ct2 = store.encrypt_phi(s, PatientPHI(mrn="MR00001234", name="Avery Quill"))
    assert key_id2 == key_id
    assert ct2 != ct  # fresh nonce every time


def test_ciphertext_is_bound_to_its_patient(store: PatientKeyStore) -> None:
    a = store.surrogate_for("MR1")
    b = store.surrogate_for("MR2")
    key_a, ct_a = store.encrypt_phi(a, PHI)
    with pytest.raises(KeyStoreError):
        store.decrypt_phi(b, key_a, ct_a)
    key_b, _ = store.encrypt_phi(b, PHI)
    with pytest.raises(KeyStoreError):
        store.decrypt_phi(b, key_b, ct_a)  # a's ciphertext under b's key and AAD
    flipped = bytearray(base64.b64decode(ct_a))
    flipped[-1] ^= 1
    with pytest.raises(KeyStoreError):
        store.decrypt_phi(a, key_a, base64.b64encode(bytes(flipped)).decode())


def test_a_wrapped_key_moved_to_another_row_does_not_open(store: PatientKeyStore) -> None:
    a = store.surrogate_for("MR1")
    b = store.surrogate_for("MR2")
    key_a, _ = store.encrypt_phi(a, PHI)
    key_b, _ = store.encrypt_phi(b, PHI)
    db = sqlite3.connect(store.path)
    wrapped_a = db.execute("SELECT wrapped_key FROM data_keys WHERE key_id=?", (key_a,)).fetchone()
    db.execute("UPDATE data_keys SET wrapped_key=? WHERE key_id=?", (wrapped_a[0], key_b))
    db.commit()
    fresh = PatientKeyStore(store.path, MasterKeyRing.single(store._ring.keys[1]))
    with pytest.raises(KeyStoreError, match="authenticate"):
        fresh.encrypt_phi(b, PHI)


def test_wrong_master_key_cannot_open_the_store(store: PatientKeyStore) -> None:
    store.surrogate_for("MR1")
    with pytest.raises(KeyStoreError):
        PatientKeyStore(store.path, MasterKeyRing.generate_b64())


def test_erasure_destroys_every_copy(store: PatientKeyStore, tmp_path: Path, master: str) -> None:
    s = store.surrogate_for(PHI["mrn"])
    copies = [store.encrypt_phi(s, PHI) for _ in range(3)]
    other_process = PatientKeyStore(tmp_path / "keys.sqlite", master)
    assert other_process.decrypt_phi(s, *copies[0])["mrn"] == PHI["mrn"]  # key now cached there
    evidence = store.erase(s)
    assert evidence["surrogate_id"] == s
    assert evidence["data_keys_destroyed"] == [copies[0][0]]
    assert "MR0000" not in str(evidence)
    for key_id, ct in copies:
        with pytest.raises(KeyDestroyed):
            store.decrypt_phi(s, key_id, ct)
    other_process.refresh()
    with pytest.raises(KeyDestroyed):
        other_process.decrypt_phi(s, *copies[1])
    with pytest.raises(KeyDestroyed):
        store.mrn_for(s)
    with pytest.raises(KeyDestroyed):
        store.encrypt_phi(s, PHI)
    assert store.erase(s) == evidence  # idempotent
    assert store.surrogate_for(PHI["mrn"]) != s  # a returning patient is a new pseudonym
    assert store.is_erased(s)


def test_unknown_keys_are_not_reported_as_destroyed(store: PatientKeyStore) -> None:
    with pytest.raises(UnknownKey):
        store.decrypt_phi("sg-nobody", "dk-nothing", "AAAA")
    with pytest.raises(UnknownKey):
        store.erase("sg-nobody")


def test_data_key_rotation_keeps_old_ciphertexts(store: PatientKeyStore) -> None:
    s = store.surrogate_for("MR1")
    old = store.encrypt_phi(s, PHI)
    new_key = store.rotate_data_key(s)
    fresh = store.encrypt_phi(s, PHI)
    assert fresh[0] == new_key != old[0]
    assert store.decrypt_phi(s, *old)["mrn"] == PHI["mrn"]
    assert store.erase(s)["data_keys_destroyed"] == [old[0], new_key]


def test_master_key_rotation(tmp_path: Path, master: str) -> None:
    path = tmp_path / "keys.sqlite"
    v1 = PatientKeyStore(path, master)
    s = v1.surrogate_for("MR1")
    ct = v1.encrypt_phi(s, PHI)
    new = MasterKeyRing.generate_b64()
    both = PatientKeyStore(path, f"2:{new},1:{master}")
    assert both.rotate_master_key() == 2  # one data key and one MRN row (plus the index key)
    only_new = PatientKeyStore(path, f"2:{new}")
    assert only_new.decrypt_phi(s, *ct)["mrn"] == PHI["mrn"]
    assert only_new.mrn_for(s) == "MR1"
    assert only_new.surrogate_for("MR1") == s
    with pytest.raises(KeyStoreError):
        PatientKeyStore(path, master)


def test_master_key_from_environment(tmp_path: Path, master: str) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text(master + "\n")
    ring = MasterKeyRing.from_env({"DEID_MASTER_KEY_FILE": str(key_file)})
    assert ring.current == 1
    with pytest.raises(KeyStoreError):
        MasterKeyRing.from_env({})
    with pytest.raises(KeyStoreError):
        MasterKeyRing.parse(base64.b64encode(b"short").decode())


def test_derived_values_are_cached_per_key_but_every_ciphertext_is_decrypted(
    store: PatientKeyStore, tmp_path: Path, master: str
) -> None:
    s = store.surrogate_for(PHI["mrn"])
    calls: list[dict[str, Any]] = []

    def derive(phi: dict[str, Any]) -> str:
        calls.append(phi)
        return str(phi.get("zip"))

    first = store.encrypt_phi(s, PHI)
    again = store.encrypt_phi(s, PHI)
    assert store.decrypt_phi_as(s, *first, derive) == "02139"
    assert store.decrypt_phi_as(s, *again, derive) == "02139"
    assert len(calls) == 1  # same plaintext: derived once
    moved = store.encrypt_phi(s, {**PHI, "zip": "10001"})
    assert store.decrypt_phi_as(s, *moved, derive) == "10001"  # changed PHI: derived again
    assert len(calls) == 2
    # A tampered ciphertext is refused even though its key has a cached value.
    flipped = bytearray(base64.b64decode(moved[1]))
    flipped[-1] ^= 1
    with pytest.raises(KeyStoreError):
        store.decrypt_phi_as(s, moved[0], base64.b64encode(bytes(flipped)).decode(), derive)
    # Erasure by another process: the cached value is unreachable and dropped with the key.
    other_process = PatientKeyStore(tmp_path / "keys.sqlite", master)
    other_process.erase(s)
    store.refresh()
    assert moved[0] not in store._derived
    with pytest.raises(KeyDestroyed):
        store.decrypt_phi_as(s, *moved, derive)
    assert len(calls) == 2
