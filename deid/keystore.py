"""The site's per-patient key store and surrogate registry (SQLite in the site's data folder).

- Surrogates are random (`secrets`), never derived from the MRN: 45 CFR 164.514(c) forbids a
  re-identification code derived from information about the individual. The registry maps
  MRN -> surrogate; the MRN column is encrypted, and lookups go through a keyed HMAC "blind
  index" whose key is itself wrapped by the master key, so the file alone reveals no MRN.
- Each patient has a data key (AES-256-GCM, 32 random bytes) that encrypts the PHI carried in
  raw flow events. Data keys are stored wrapped by the master key; each wrapped value records
  the master key version so the master key can rotate (`rotate_master_key`).
- Associated data binds every ciphertext to its row (surrogate, key id, master version): a
  ciphertext copied into another row fails to decrypt instead of decrypting as someone else.
- `erase` is crypto-shredding: the patient's data keys and registry row are deleted (with
  SQLite `secure_delete` and a WAL checkpoint so the bytes do not linger in the file), after
  which every copy of their PHI on Kafka is unreadable and `decrypt_phi` raises KeyDestroyed.

Unwrapped keys are cached in memory so encryption and decryption cost one AES-GCM operation
each; a cache is dropped as soon as another process records an erasure (checked at most once
a second, and on `refresh()`). `decrypt_phi_as` also keeps, per data key, what a caller
derives from the decrypted PHI (the DE-ID worker's age/sex/ZIP3), keyed by a digest of the
plaintext: every ciphertext is still decrypted and authenticated, only the JSON parsing and
derivation are skipped when a patient's PHI is unchanged. Those values live and die with the
key's cache entry, so an erasure drops them too.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from deid.contracts._codec import json_loads
from deid.contracts.raw import PatientPHI
from deid.signing import secret_from_env

MASTER_KEY_ENV = "DEID_MASTER_KEY"
_PHI_FORMAT = b"\x01"  # ciphertext layout version: 0x01 || 12-byte nonce || AES-GCM output
_NONCE = 12
_REFRESH_SECONDS = 1.0
_CACHE_LIMIT = 200_000

T = TypeVar("T")


class KeyStoreError(Exception):
    """The key store cannot do what was asked (bad master key, corrupt row, unknown key)."""


class KeyDestroyed(KeyStoreError):
    """The patient's data key was destroyed by an erasure: the PHI is gone for good."""


class UnknownKey(KeyStoreError):
    """No such data key in this store (another site's, or a forged key id)."""


@dataclass(frozen=True, slots=True)
class MasterKeyRing:
    """Master keys by version; `current` wraps new keys, older versions still unwrap.

    Environment format (`DEID_MASTER_KEY` or a file named by `DEID_MASTER_KEY_FILE`): either
    one base64 key of 32 bytes (version 1), or comma-separated `VERSION:BASE64` entries during a
    rotation, e.g. `2:q0v...=,1:Zm9...=`; the highest version is current.
    """

    keys: Mapping[int, bytes]
    current: int
    _aeads: dict[int, AESGCM] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise KeyStoreError("the current master key version has no key")
        if any(len(k) != 32 for k in self.keys.values()):
            raise KeyStoreError("master keys are 32 bytes (AES-256)")

    @classmethod
    def single(cls, key: bytes, version: int = 1) -> MasterKeyRing:
        return cls(keys={version: key}, current=version)

    @classmethod
    def parse(cls, text: str) -> MasterKeyRing:
        keys: dict[int, bytes] = {}
        for entry in (e.strip() for e in text.split(",") if e.strip()):
            version_text, sep, b64 = entry.rpartition(":")
            version = int(version_text) if sep else 1
            try:
                keys[version] = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                raise KeyStoreError("master key is not valid base64") from None
        if not keys:
            raise KeyStoreError("empty master key")
        return cls(keys=keys, current=max(keys))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MasterKeyRing:
        text = secret_from_env(MASTER_KEY_ENV, environ)
        if text is None:
            raise KeyStoreError(f"set {MASTER_KEY_ENV} or {MASTER_KEY_ENV}_FILE")
        return cls.parse(text)

    @staticmethod
    def generate_b64() -> str:
        return base64.b64encode(secrets.token_bytes(32)).decode()

    def aead(self, version: int) -> AESGCM:
        # One AESGCM per version, made on first use: the worker unwraps a data key for
        # every new patient it sees, and building the cipher object each time cost as much as
        # the unwrapping.
        aead = self._aeads.get(version)
        if aead is None:
            try:
                aead = self._aeads[version] = AESGCM(self.keys[version])
            except KeyError:
                raise KeyStoreError(f"master key version {version} is not configured") from None
        return aead


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _seal(aead: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(_NONCE)
    return nonce + aead.encrypt(nonce, plaintext, aad)


def _open(aead: AESGCM, blob: bytes, aad: bytes) -> bytes:
    return aead.decrypt(blob[:_NONCE], blob[_NONCE:], aad)


def _aad_data_key(key_id: str, surrogate_id: str, version: int) -> bytes:
    return f"deid/data-key/v1|{key_id}|{surrogate_id}|{version}".encode()


def _aad_mrn(surrogate_id: str, version: int) -> bytes:
    return f"deid/mrn/v1|{surrogate_id}|{version}".encode()


def _aad_index_key(version: int) -> bytes:
    return f"deid/index-key/v1|{version}".encode()


def _aad_phi(surrogate_id: str, key_id: str) -> bytes:
    return f"deid/phi/v1|{surrogate_id}|{key_id}".encode()


def _new_surrogate() -> str:
    # 120 random bits in lower-case base32: no relation to any patient datum (164.514(c)).
    return "sg-" + base64.b32encode(secrets.token_bytes(15)).decode().lower()


def _new_key_id() -> str:
    return "dk-" + secrets.token_hex(8)


def _json_default(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS patients (
    surrogate_id   TEXT PRIMARY KEY,
    mrn_index      BLOB NOT NULL UNIQUE,  -- HMAC-SHA256(index key, MRN): lookup, not reversible
    mrn_ciphertext BLOB NOT NULL,         -- AES-256-GCM under the master key, AAD = this row
    master_version INTEGER NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS data_keys (
    key_id         TEXT PRIMARY KEY,
    surrogate_id   TEXT NOT NULL,
    wrapped_key    BLOB NOT NULL,         -- AES-256-GCM under the master key, AAD = this row
    master_version INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    retired_at     TEXT                   -- rotated out: still decrypts, no longer encrypts
);
CREATE INDEX IF NOT EXISTS data_keys_by_surrogate ON data_keys (surrogate_id);
CREATE TABLE IF NOT EXISTS destroyed_keys (
    key_id       TEXT PRIMARY KEY,
    surrogate_id TEXT NOT NULL,
    destroyed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS erasures (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    surrogate_id TEXT NOT NULL,
    erased_at    TEXT NOT NULL,
    evidence     TEXT NOT NULL
);
"""


class PatientKeyStore:
    """Per-patient keys and the surrogate registry of one site. Thread-safe; several
    processes (site agent, DE-ID worker) may open the same file."""

    def __init__(self, path: str | os.PathLike[str], master_key: bytes | str | MasterKeyRing):
        if isinstance(master_key, MasterKeyRing):
            self._ring = master_key
        elif isinstance(master_key, bytes):
            self._ring = MasterKeyRing.single(master_key)
        else:
            self._ring = MasterKeyRing.parse(master_key)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # A key lost after a crash would make the PHI it encrypted unreadable: full sync.
        self._db.execute("PRAGMA synchronous=FULL")
        # Deleted rows are overwritten, so an erased key does not survive in free pages.
        self._db.execute("PRAGMA secure_delete=ON")
        self._init_schema()
        self._index_key = self._load_index_key()
        self._mrn_cache: dict[str, str] = {}
        self._current: dict[str, tuple[str, AESGCM]] = {}  # surrogate -> encrypting key
        self._keys: dict[str, tuple[str, AESGCM]] = {}  # key_id -> (surrogate, aead)
        # key_id -> the data key's bytes, for the native core (deid_core), which decrypts
        # without the `cryptography` objects; kept and dropped with `_keys`.
        self._raw_keys: dict[str, bytes] = {}
        # key_id -> (derive function, plaintext digest, derived value): see decrypt_phi_as.
        self._derived: dict[str, tuple[Any, bytes, Any]] = {}
        self._erasure_seq = self._read_erasure_seq()
        self._checked_at = time.monotonic()
        # Not fatal on file systems without POSIX permissions.
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)

    @classmethod
    def from_env(cls, path: str | os.PathLike[str]) -> PatientKeyStore:
        return cls(path, MasterKeyRing.from_env())

    # -- plumbing ---------------------------------------------------------------------------

    def _tx(self) -> _Transaction:
        return _Transaction(self._db, self._lock)

    def _init_schema(self) -> None:
        with self._lock:
            self._db.executescript(_SCHEMA)

    def _load_index_key(self) -> bytes:
        with self._tx():
            row = self._db.execute("SELECT value FROM meta WHERE name = 'index_key'").fetchone()
            if row is None:
                key = secrets.token_bytes(32)
                self._store_index_key(key)
                return key
        version, b64 = str(row[0]).split(":", 1)
        try:
            return _open(
                self._ring.aead(int(version)), base64.b64decode(b64), _aad_index_key(int(version))
            )
        except InvalidTag:
            raise KeyStoreError("the master key does not open this key store") from None

    def _store_index_key(self, key: bytes) -> None:
        v = self._ring.current
        blob = base64.b64encode(_seal(self._ring.aead(v), key, _aad_index_key(v))).decode()
        self._db.execute(
            "INSERT INTO meta (name, value) VALUES ('index_key', ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (f"{v}:{blob}",),
        )

    def _read_erasure_seq(self) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM erasures").fetchone()
        return int(row[0])

    def _mrn_index(self, mrn: str) -> bytes:
        return hmac.new(self._index_key, mrn.encode(), hashlib.sha256).digest()

    def _maybe_refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked_at >= _REFRESH_SECONDS:
            self.refresh()

    def refresh(self) -> None:
        """Drop in-memory keys if another process erased a patient since we last looked."""
        with self._lock:
            self._checked_at = time.monotonic()
            seq = self._read_erasure_seq()
            if seq != self._erasure_seq:
                self._erasure_seq = seq
                self._mrn_cache.clear()
                self._current.clear()
                self._keys.clear()
                self._raw_keys.clear()
                self._derived.clear()

    def _trim_caches(self) -> None:
        for cache in (self._mrn_cache, self._current, self._keys):
            if len(cache) > _CACHE_LIMIT:
                for key in list(cache)[: _CACHE_LIMIT // 2]:
                    cache.pop(key, None)
                    if cache is self._keys:
                        self._derived.pop(key, None)  # goes with its key
                        self._raw_keys.pop(key, None)
        if len(self._derived) > _CACHE_LIMIT:
            self._derived.clear()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> PatientKeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- surrogate registry -----------------------------------------------------------------

    def surrogate_for(self, mrn: str) -> str:
        """The patient's random surrogate; created (with the patient's data key) on first use."""
        cached = self._mrn_cache.get(mrn)
        if cached is not None:
            self._maybe_refresh()
            cached = self._mrn_cache.get(mrn)
            if cached is not None:
                return cached
        return self.surrogates_for([mrn])[0]

    def surrogates_for(self, mrns: Iterable[str]) -> list[str]:
        """Batch form of `surrogate_for`: one transaction (one fsync) for all new patients."""
        wanted = list(mrns)
        if any(not m for m in wanted):
            raise ValueError("an MRN must not be empty")
        out: list[str] = []
        with self._tx():
            for mrn in wanted:
                surrogate = self._mrn_cache.get(mrn)
                if surrogate is None:
                    index = self._mrn_index(mrn)
                    row = self._db.execute(
                        "SELECT surrogate_id FROM patients WHERE mrn_index = ?", (index,)
                    ).fetchone()
                    surrogate = str(row[0]) if row else self._create_patient(mrn, index)
                    self._mrn_cache[mrn] = surrogate
                out.append(surrogate)
        self._trim_caches()
        return out

    def _create_patient(self, mrn: str, index: bytes) -> str:
        v = self._ring.current
        surrogate = _new_surrogate()
        mrn_blob = _seal(self._ring.aead(v), mrn.encode(), _aad_mrn(surrogate, v))
        self._db.execute(
            "INSERT INTO patients (surrogate_id, mrn_index, mrn_ciphertext, master_version,"
            " created_at) VALUES (?, ?, ?, ?, ?)",
            (surrogate, index, mrn_blob, v, _now()),
        )
        self._create_data_key(surrogate)
        return surrogate

    def _create_data_key(self, surrogate: str) -> tuple[str, AESGCM]:
        v = self._ring.current
        key_id = _new_key_id()
        key = AESGCM.generate_key(bit_length=256)
        wrapped = _seal(self._ring.aead(v), key, _aad_data_key(key_id, surrogate, v))
        self._db.execute(
            "INSERT INTO data_keys (key_id, surrogate_id, wrapped_key, master_version,"
            " created_at) VALUES (?, ?, ?, ?, ?)",
            (key_id, surrogate, wrapped, v, _now()),
        )
        entry = (key_id, AESGCM(key))
        self._keys[key_id] = (surrogate, entry[1])
        self._raw_keys[key_id] = key
        self._current[surrogate] = entry
        return entry

    def mrn_for(self, surrogate_id: str) -> str:
        """Re-identification at the site (e.g. to answer an erasure request by MRN).
        Raises KeyDestroyed after erasure, UnknownKey for a surrogate never issued."""
        with self._lock:
            row = self._db.execute(
                "SELECT mrn_ciphertext, master_version FROM patients WHERE surrogate_id = ?",
                (surrogate_id,),
            ).fetchone()
            if row is None:
                self._raise_missing_surrogate(surrogate_id)
        blob, v = bytes(row[0]), int(row[1])
        try:
            return _open(self._ring.aead(v), blob, _aad_mrn(surrogate_id, v)).decode()
        except InvalidTag:
            raise KeyStoreError("registry row does not authenticate") from None

    def _raise_missing_surrogate(self, surrogate_id: str) -> None:
        erased = self._db.execute(
            "SELECT 1 FROM erasures WHERE surrogate_id = ?", (surrogate_id,)
        ).fetchone()
        if erased:
            raise KeyDestroyed("this patient was erased")
        raise UnknownKey("no such surrogate in this key store")

    # -- PHI encryption ---------------------------------------------------------------------

    def _encrypting_key(self, surrogate_id: str) -> tuple[str, AESGCM]:
        entry = self._current.get(surrogate_id)
        if entry is not None:
            return entry
        with self._tx():
            row = self._db.execute(
                "SELECT key_id, wrapped_key, master_version FROM data_keys "
                "WHERE surrogate_id = ? AND retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
                (surrogate_id,),
            ).fetchone()
            if row is None:
                known = self._db.execute(
                    "SELECT 1 FROM patients WHERE surrogate_id = ?", (surrogate_id,)
                ).fetchone()
                if not known:
                    self._raise_missing_surrogate(surrogate_id)
                return self._create_data_key(surrogate_id)
        key_id = str(row[0])
        aead = self._unwrap(key_id, surrogate_id, bytes(row[1]), int(row[2]))
        entry = (key_id, aead)
        self._current[surrogate_id] = entry
        return entry

    def _unwrap(self, key_id: str, surrogate_id: str, wrapped: bytes, version: int) -> AESGCM:
        try:
            key = _open(
                self._ring.aead(version), wrapped, _aad_data_key(key_id, surrogate_id, version)
            )
        except InvalidTag:
            raise KeyStoreError(
                "data key does not authenticate (wrong row or master key)"
            ) from None
        aead = AESGCM(key)
        self._keys[key_id] = (surrogate_id, aead)
        self._raw_keys[key_id] = key
        return aead

    def _decrypting_key(self, surrogate_id: str, key_id: str) -> AESGCM:
        self._maybe_refresh()
        entry = self._keys.get(key_id)
        if entry is not None:
            if entry[0] != surrogate_id:
                raise KeyStoreError("key does not belong to this surrogate")
            return entry[1]
        with self._lock:
            row = self._db.execute(
                "SELECT surrogate_id, wrapped_key, master_version FROM data_keys WHERE key_id = ?",
                (key_id,),
            ).fetchone()
            if row is None:
                destroyed = self._db.execute(
                    "SELECT 1 FROM destroyed_keys WHERE key_id = ?", (key_id,)
                ).fetchone()
                if destroyed:
                    raise KeyDestroyed("the patient's data key was destroyed (erasure)")
                raise UnknownKey("no such data key in this key store")
        if str(row[0]) != surrogate_id:
            raise KeyStoreError("key does not belong to this surrogate")
        aead = self._unwrap(key_id, surrogate_id, bytes(row[1]), int(row[2]))
        self._trim_caches()
        return aead

    def preload(self, key_ids: Iterable[str]) -> int:
        """Unwrap, in one query, the data keys of a batch that are not cached yet (the worker
        calls this once per window). Unknown or destroyed keys are skipped here and reported
        by decrypt_phi. Returns the number of keys unwrapped."""
        self._maybe_refresh()
        missing = list({k for k in key_ids if k not in self._keys})
        loaded = 0
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            marks = ",".join("?" * len(chunk))
            select = "SELECT key_id, surrogate_id, wrapped_key, master_version FROM data_keys"
            # Only "?" placeholders are interpolated; the key ids are bound parameters.
            query = f"{select} WHERE key_id IN ({marks})"
            with self._lock:
                rows = self._db.execute(query, chunk).fetchall()
            for key_id, surrogate, wrapped, version in rows:
                self._unwrap(str(key_id), str(surrogate), bytes(wrapped), int(version))
                loaded += 1
        self._trim_caches()
        return loaded

    def data_keys_for(self, pairs: Iterable[tuple[str, str]]) -> list[bytes | None | bool]:
        """For the native core: per (surrogate_id, key_id), the data key's 32 bytes; None when
        decrypt_phi would raise KeyDestroyed (an erasure); False when it would raise another
        KeyStoreError (unknown key, key of another surrogate, a row that does not open). The
        same lookups and caches as decrypt_phi, so both paths see the same keys."""
        wanted = list(pairs)
        self.preload(key_id for _, key_id in wanted)
        out: list[bytes | None | bool] = []
        for surrogate_id, key_id in wanted:
            try:
                self._decrypting_key(surrogate_id, key_id)
            except KeyDestroyed:
                out.append(None)
                continue
            except KeyStoreError:
                out.append(False)
                continue
            out.append(self._raw_keys.get(key_id, False))
        return out

    def encrypt_phi(
        self, surrogate_id: str, phi: Mapping[str, Any] | PatientPHI
    ) -> tuple[str, str]:
        """Encrypt a patient's PHI (a dict or PatientPHI) with their data key.
        Returns (key_id, base64 ciphertext) for RawFlowEvent.key_id / .phi_ciphertext."""
        payload = phi.to_dict() if isinstance(phi, PatientPHI) else dict(phi)
        plaintext = json.dumps(payload, separators=(",", ":"), default=_json_default).encode()
        self._maybe_refresh()
        key_id, aead = self._encrypting_key(surrogate_id)
        nonce = secrets.token_bytes(_NONCE)
        blob = _PHI_FORMAT + nonce + aead.encrypt(nonce, plaintext, _aad_phi(surrogate_id, key_id))
        return key_id, base64.b64encode(blob).decode()

    def decrypt_phi(self, surrogate_id: str, key_id: str, ciphertext_b64: str) -> dict[str, Any]:
        """Decrypt PHI from a raw flow event. Raises KeyDestroyed after an erasure, UnknownKey
        for a key this site never issued, KeyStoreError for a tampered or misplaced ciphertext."""
        result: dict[str, Any] = json_loads(self._decrypt(surrogate_id, key_id, ciphertext_b64))
        return result

    def decrypt_phi_as(
        self,
        surrogate_id: str,
        key_id: str,
        ciphertext_b64: str,
        derive: Callable[[dict[str, Any]], T],
    ) -> T:
        """`derive(decrypt_phi(...))`, with the last derived value of each data key kept in
        memory: the ciphertext is always decrypted and authenticated (same errors as
        decrypt_phi), and when its plaintext has the same digest as last time for this key the
        cached value is returned without parsing the PHI again. The cache entry goes with the
        key's (erasure, refresh after another process's erasure, trimming)."""
        plaintext = self._decrypt(surrogate_id, key_id, ciphertext_b64)
        digest = hashlib.blake2b(plaintext, digest_size=16).digest()
        cached = self._derived.get(key_id)
        if cached is not None and cached[0] is derive and cached[1] == digest:
            value: T = cached[2]
            return value
        value = derive(json_loads(plaintext))
        self._derived[key_id] = (derive, digest, value)
        return value

    def _decrypt(self, surrogate_id: str, key_id: str, ciphertext_b64: str) -> bytes:
        aead = self._decrypting_key(surrogate_id, key_id)
        try:
            # What base64.b64decode(..., validate=True) does, without its wrapper's cost.
            blob = binascii.a2b_base64(ciphertext_b64, strict_mode=True)
        except (binascii.Error, ValueError):
            raise KeyStoreError("ciphertext is not base64") from None
        if len(blob) < 1 + _NONCE + 16 or blob[:1] != _PHI_FORMAT:
            raise KeyStoreError("unknown ciphertext format")
        try:
            plaintext: bytes = aead.decrypt(
                blob[1 : 1 + _NONCE], blob[1 + _NONCE :], _aad_phi(surrogate_id, key_id)
            )
        except InvalidTag:
            raise KeyStoreError("ciphertext does not authenticate for this patient") from None
        return plaintext

    def decrypt_patient(self, surrogate_id: str, key_id: str, ciphertext_b64: str) -> PatientPHI:
        return PatientPHI.from_dict(self.decrypt_phi(surrogate_id, key_id, ciphertext_b64))

    # -- erasure and rotation ---------------------------------------------------------------

    def erase(self, surrogate_id: str) -> dict[str, Any]:
        """Crypto-shred a patient: destroy their data keys and registry row. Returns evidence
        (no PHI in it) for the governance audit log. Erasing twice returns the first evidence."""
        with self._tx():
            previous = self._db.execute(
                "SELECT evidence FROM erasures WHERE surrogate_id = ?", (surrogate_id,)
            ).fetchone()
            if previous:
                evidence: dict[str, Any] = json.loads(previous[0])
                return evidence
            key_ids = [
                str(r[0])
                for r in self._db.execute(
                    "SELECT key_id FROM data_keys WHERE surrogate_id = ? ORDER BY created_at",
                    (surrogate_id,),
                )
            ]
            deleted = self._db.execute(
                "DELETE FROM patients WHERE surrogate_id = ?", (surrogate_id,)
            ).rowcount
            if not deleted and not key_ids:
                raise UnknownKey("no such surrogate in this key store")
            self._db.execute("DELETE FROM data_keys WHERE surrogate_id = ?", (surrogate_id,))
            erased_at = _now()
            self._db.executemany(
                "INSERT OR IGNORE INTO destroyed_keys (key_id, surrogate_id, destroyed_at) "
                "VALUES (?, ?, ?)",
                [(k, surrogate_id, erased_at) for k in key_ids],
            )
            evidence = {
                "surrogate_id": surrogate_id,
                "erased_at": erased_at,
                "method": "crypto-shredding",
                "data_keys_destroyed": key_ids,
                "registry_row_deleted": bool(deleted),
                "key_store": str(self.path.name),
                "secure_delete": True,
                "statement": (
                    "The patient's AES-256-GCM data keys and the surrogate-to-MRN registry row "
                    "were deleted from the site key store (SQLite secure_delete, WAL "
                    "checkpointed). Every ciphertext of this patient's PHI, on Kafka or "
                    "elsewhere, can no longer be decrypted."
                ),
            }
            evidence["evidence_sha256"] = hashlib.sha256(
                json.dumps(evidence, sort_keys=True).encode()
            ).hexdigest()
            self._db.execute(
                "INSERT INTO erasures (surrogate_id, erased_at, evidence) VALUES (?, ?, ?)",
                (surrogate_id, erased_at, json.dumps(evidence, sort_keys=True)),
            )
        with self._lock:
            # Push the deletion out of the write-ahead log into the (securely deleted) file.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._current.pop(surrogate_id, None)
            for k in key_ids:
                self._keys.pop(k, None)
                self._raw_keys.pop(k, None)
                self._derived.pop(k, None)
            for mrn, s in list(self._mrn_cache.items()):
                if s == surrogate_id:
                    del self._mrn_cache[mrn]
            self._erasure_seq = self._read_erasure_seq()
        return evidence

    def is_erased(self, surrogate_id: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM erasures WHERE surrogate_id = ?", (surrogate_id,)
            ).fetchone()
        return row is not None

    def rotate_data_key(self, surrogate_id: str) -> str:
        """Retire the patient's current data key (old ciphertexts still decrypt) and issue a
        new one for future encryptions. Returns the new key id."""
        with self._tx():
            self._db.execute(
                "UPDATE data_keys SET retired_at = ? WHERE surrogate_id = ? AND retired_at IS NULL",
                (_now(), surrogate_id),
            )
            known = self._db.execute(
                "SELECT 1 FROM patients WHERE surrogate_id = ?", (surrogate_id,)
            ).fetchone()
            if not known:
                self._raise_missing_surrogate(surrogate_id)
            key_id, _ = self._create_data_key(surrogate_id)
        return key_id

    def rotate_master_key(self) -> int:
        """Re-wrap every data key, MRN ciphertext and the index key under the current master
        key version. Returns the number of rows re-wrapped. Afterwards the old master key
        version can be removed from the environment."""
        v = self._ring.current
        count = 0
        with self._tx():
            for key_id, surrogate, wrapped, old in self._db.execute(
                "SELECT key_id, surrogate_id, wrapped_key, master_version FROM data_keys "
                "WHERE master_version != ?",
                (v,),
            ).fetchall():
                key = _open(self._ring.aead(old), wrapped, _aad_data_key(key_id, surrogate, old))
                self._db.execute(
                    "UPDATE data_keys SET wrapped_key = ?, master_version = ? WHERE key_id = ?",
                    (
                        _seal(self._ring.aead(v), key, _aad_data_key(key_id, surrogate, v)),
                        v,
                        key_id,
                    ),
                )
                count += 1
            for surrogate, blob, old in self._db.execute(
                "SELECT surrogate_id, mrn_ciphertext, master_version FROM patients "
                "WHERE master_version != ?",
                (v,),
            ).fetchall():
                mrn = _open(self._ring.aead(old), blob, _aad_mrn(surrogate, old))
                self._db.execute(
                    "UPDATE patients SET mrn_ciphertext = ?, master_version = ? "
                    "WHERE surrogate_id = ?",
                    (_seal(self._ring.aead(v), mrn, _aad_mrn(surrogate, v)), v, surrogate),
                )
                count += 1
            self._store_index_key(self._index_key)
        return count

    def stats(self) -> dict[str, int]:
        with self._lock:
            patients = self._db.execute("SELECT COUNT(*) FROM patients").fetchone()[0]
            keys = self._db.execute("SELECT COUNT(*) FROM data_keys").fetchone()[0]
            erased = self._db.execute("SELECT COUNT(*) FROM erasures").fetchone()[0]
        return {"patients": int(patients), "data_keys": int(keys), "erasures": int(erased)}


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT under the store's lock (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self._db = db
        self._lock = lock
        self._depth = 0

    def __enter__(self) -> None:
        self._lock.acquire()
        if not self._db.in_transaction:
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            if self._depth:
                self._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._lock.release()
