"""JSON Schemas (draft 2020-12) of the wire contracts, generated from the same field
descriptions the codec uses. `python -m deid schemas docs/schemas` writes them; a test fails
when the files in docs/ drift from the code."""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from datetime import date, datetime
from pathlib import Path
from typing import Any

from deid.contracts._base import RECORD_TYPES, Record
from deid.contracts._codec import field_specs
from deid.contracts.envelope import ENVELOPE_RECORD_TYPE, ENVELOPE_VERSION

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE = "https://regional-twin-hub.example/schemas/"


def _type_schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return {"anyOf": [_type_schema(inner[0], defs), {"type": "null"}]}
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is datetime:
        return {"type": "string", "format": "date-time"}
    if tp is date:
        return {"type": "string", "format": "date"}
    if tp is Any:
        return {}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"type": "string", "enum": [m.value for m in tp]}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if tp.__name__ not in defs:
            defs[tp.__name__] = {}  # placeholder against recursion
            defs[tp.__name__] = _object_schema(tp, defs)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    args = typing.get_args(tp)
    if origin is tuple:
        return {"type": "array", "items": _type_schema(args[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1], defs)}
    raise TypeError(f"no JSON Schema for {tp!r}")


def _object_schema(cls: type[Any], defs: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for spec in field_specs(cls):
        prop = _type_schema(spec.type, defs)
        if spec.doc:
            prop = {"description": spec.doc, **prop}
        properties[spec.name] = prop
        if spec.required:
            required.append(spec.name)
    schema: dict[str, Any] = {"type": "object"}
    if cls.__doc__:
        schema["description"] = " ".join(cls.__doc__.split())
    schema["properties"] = properties
    schema["required"] = required
    return schema


def record_schema(cls: type[Record]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    body = _object_schema(cls, defs)
    body["properties"] = {
        "record_type": {"const": cls.record_type},
        "schema_version": {
            "description": "Contract version; older versions still decode, newer are refused.",
            "type": "integer",
            "minimum": 1,
            "maximum": cls.schema_version,
        },
        **body["properties"],
    }
    body["required"] = ["record_type", "schema_version", *body["required"]]
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{SCHEMA_BASE}{cls.record_type}.v{cls.schema_version}.schema.json",
        "title": cls.__name__,
        **body,
        # Unknown properties are ignored on decode (and never copied to an output).
        "additionalProperties": True,
    }
    if defs:
        schema["$defs"] = dict(sorted(defs.items()))
    return schema


def envelope_schema() -> dict[str, Any]:
    regional = [cls for cls in RECORD_TYPES.values() if cls.record_type.startswith("regional.")]
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{SCHEMA_BASE}{ENVELOPE_RECORD_TYPE}.v{ENVELOPE_VERSION}.schema.json",
        "title": "Envelope",
        "description": (
            "One Kafka message on regional.deid.v1: many regional records, the SHA-256 of each "
            "record's canonical JSON, and one Ed25519 signature over the header and hash list."
        ),
        "type": "object",
        "properties": {
            "record_type": {"const": ENVELOPE_RECORD_TYPE},
            "envelope_version": {"const": ENVELOPE_VERSION},
            "site_code": {"type": "string"},
            "policy_version": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "batch_id": {"type": "string", "format": "uuid"},
            "key_id": {"type": "string", "description": "sha256(raw public key)[:16] in hex"},
            "created_at": {"type": "string", "format": "date-time"},
            "records": {
                "type": "array",
                "items": {
                    "oneOf": [
                        {"$ref": f"{cls.record_type}.v{cls.schema_version}.schema.json"}
                        for cls in sorted(regional, key=lambda c: c.record_type)
                    ]
                },
            },
            "record_hashes": {
                "type": "array",
                "items": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            },
            "signature": {"type": "string", "contentEncoding": "base64"},
        },
        "required": [
            "record_type",
            "envelope_version",
            "site_code",
            "policy_version",
            "batch_id",
            "key_id",
            "created_at",
            "records",
            "record_hashes",
            "signature",
        ],
        "additionalProperties": False,
    }


def all_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, for every record type, the envelope and the policy document."""
    from deid.policy import policy_schema

    out = {f"{rt}.schema.json": record_schema(cls) for rt, cls in sorted(RECORD_TYPES.items())}
    out[f"{ENVELOPE_RECORD_TYPE}.schema.json"] = envelope_schema()
    out["policy.schema.json"] = policy_schema()
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(folder: str | Path) -> list[Path]:
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in all_schemas().items():
        path = target / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


def drift(folder: str | Path) -> list[str]:
    """Names of schema files that are missing or differ from the code."""
    target = Path(folder)
    out = []
    for name, schema in all_schemas().items():
        path = target / name
        if not path.exists() or path.read_text(encoding="utf-8") != render(schema):
            out.append(name)
    return out
