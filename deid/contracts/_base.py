"""The common part of every wire record and the registry that decodes any of them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Self, TypeVar

from deid.contracts._codec import (
    DecodeError,
    WireObject,
    build,
    canonical_json,
    encoder_of,
    json_loads,
)
from deid.contracts.topics import SITE_CODE_RE

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

Upgrade = Callable[[dict[str, Any]], dict[str, Any]]

# Site codes already matched against SITE_CODE_RE: a worker decodes one site's records, so
# the pattern runs once per site instead of once per record.
_VALID_SITE_CODES: set[str] = set()


def new_event_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


def doc(text: str) -> dict[str, str]:
    """Field metadata: the description that goes into the generated JSON Schema."""
    return {"doc": text}


@dataclass(frozen=True, slots=True, kw_only=True)
class Record(WireObject):
    """Every record on the wire: `record_type`, `schema_version`, `event_id`, `site_code`,
    `produced_at`. `record_type` and `schema_version` are class constants written on encode."""

    record_type: ClassVar[str] = ""
    schema_version: ClassVar[int] = 1
    # upgrades[n] turns a version-n payload into a version-(n+1) payload, so a record written
    # by an older producer still decodes. A newer version than the code knows is refused:
    # the privacy kernel does not guess what a new field means.
    upgrades: ClassVar[Mapping[int, Upgrade]] = {}

    site_code: str = field(metadata=doc("Producing site; also the Kafka message key."))
    event_id: str = field(
        default_factory=new_event_id, metadata=doc("Random UUID (v4), unique per record.")
    )
    produced_at: datetime = field(
        default_factory=utcnow, metadata=doc("When the record was produced, ISO-8601 UTC.")
    )

    def __post_init__(self) -> None:
        site_code = self.site_code
        if site_code not in _VALID_SITE_CODES:
            if not SITE_CODE_RE.match(site_code):
                raise DecodeError("site_code: 1-32 characters of A-Z a-z 0-9 _ -")
            if len(_VALID_SITE_CODES) < 4096:
                _VALID_SITE_CODES.add(site_code)
        if not _UUID_RE.match(self.event_id):
            raise DecodeError("event_id: expected a lower-case UUID string")

    def to_dict(self) -> dict[str, Any]:
        return encoder_of(type(self), header=True)(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str = "") -> Self:
        if type(data) is not dict:
            raise DecodeError("record: expected a JSON object")
        if data.get("record_type") != cls.record_type:
            raise DecodeError(f"record_type: expected {cls.record_type}")
        version = data.get("schema_version")
        if type(version) is not int or version < 1:
            raise DecodeError("schema_version: expected a positive integer")
        if version > cls.schema_version:
            raise DecodeError(
                f"schema_version: {version} is newer than this code knows "
                f"({cls.record_type} v{cls.schema_version})"
            )
        payload: dict[str, Any] = data
        while version < cls.schema_version:
            payload = cls.upgrades[version](dict(payload))
            version += 1
        result: Self = build(cls, payload, path)
        return result

    def encode(self) -> bytes:
        return canonical_json(self.to_dict()).encode()

    @classmethod
    def decode(cls, data: bytes | str) -> Self:
        return cls.from_dict(loads(data))


def loads(data: bytes | str) -> Any:
    try:
        return json_loads(data)
    except (ValueError, UnicodeDecodeError):
        raise DecodeError("payload is not UTF-8 JSON") from None


R = TypeVar("R", bound=type[Record])

RECORD_TYPES: dict[str, type[Record]] = {}


def register(cls: R) -> R:
    """Register a record class for `decode_record` (applied after @dataclass)."""
    if not cls.record_type or cls.record_type in RECORD_TYPES:
        raise TypeError(f"record_type missing or registered twice: {cls.record_type!r}")
    RECORD_TYPES[cls.record_type] = cls
    return cls


def record_from_dict(data: Any) -> Record:
    if type(data) is not dict:
        raise DecodeError("record: expected a JSON object")
    record_type = data.get("record_type")
    cls = RECORD_TYPES.get(record_type) if type(record_type) is str else None
    if cls is None:
        raise DecodeError("record_type: unknown")
    return cls.from_dict(data)


def decode_record(data: bytes | str) -> Record:
    """Decode any registered record from its JSON bytes; raises DecodeError."""
    return record_from_dict(loads(data))
