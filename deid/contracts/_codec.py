"""Typed JSON codec for the wire contracts: one description of each field drives decoding,
encoding and the generated JSON Schema, so the three cannot disagree.

Error messages name the field and the expected type, never the offending value: a raw record
may hold PHI, and decode errors travel in dead-letter headers and logs.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

JSON = Any
Decoder = Callable[[Any, str], Any]
Encoder = Callable[[Any], Any] | None


class DecodeError(ValueError):
    """A payload does not match its contract. The message never includes field values."""


_MISSING = object()


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; the stdlib path is the spec
    orjson = None  # type: ignore[assignment]


def canonical_json(obj: Any) -> str:
    """The canonical form that record hashes and signatures are computed over: keys sorted,
    no insignificant whitespace, UTF-8 (non-ASCII kept as is), i.e. what
    `json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes.
    orjson writes the same bytes 10x faster for every value the contracts carry (it differs
    only in the exponent form of floats below 1e-4, which the transforms never emit: the only
    floats released, forecast quantiles, are rounded to two decimals). For these value ranges
    the form also coincides with RFC 8785 (JCS), so verifiers in other languages can
    reproduce it."""
    if orjson is not None:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()
    return _CANONICAL.encode(obj)


def json_loads(data: bytes | str) -> Any:
    """Parse JSON (orjson when installed: the worker parses every raw record)."""
    if orjson is not None:
        return orjson.loads(data)
    return json.loads(data)


def parse_utc(value: Any, path: str) -> datetime:
    if type(value) is not str:
        raise DecodeError(f"{path}: expected an ISO-8601 timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise DecodeError(f"{path}: not an ISO-8601 timestamp") from None
    if parsed.tzinfo is None:
        # A naive timestamp is ambiguous across sites and daylight-saving changes.
        raise DecodeError(f"{path}: timestamp must carry a UTC offset")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:30+01:00: before year 1 in UTC
        raise DecodeError(f"{path}: timestamp out of range in UTC") from None


def format_utc(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime: the contracts carry UTC timestamps only")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _decode_str(value: Any, path: str) -> str:
    if type(value) is not str:
        raise DecodeError(f"{path}: expected a string")
    return value


def _decode_int(value: Any, path: str) -> int:
    # bool is an int subclass in Python, but `true` is not a count.
    if type(value) is not int:
        raise DecodeError(f"{path}: expected an integer")
    return value


def _decode_float(value: Any, path: str) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise DecodeError(f"{path}: expected a number")


def _decode_bool(value: Any, path: str) -> bool:
    if type(value) is not bool:
        raise DecodeError(f"{path}: expected true or false")
    return value


def _decode_date(value: Any, path: str) -> date:
    if type(value) is not str:
        raise DecodeError(f"{path}: expected an ISO-8601 date string")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DecodeError(f"{path}: not an ISO-8601 date") from None


def _decode_any(value: Any, path: str) -> Any:
    return value


def _enum_decoder(cls: type[enum.Enum]) -> Decoder:
    members = {m.value: m for m in cls}

    def decode(value: Any, path: str) -> Any:
        try:
            return members[value]
        except (KeyError, TypeError):
            raise DecodeError(f"{path}: not one of the {cls.__name__} values") from None

    return decode


def _optional(inner: Decoder) -> Decoder:
    def decode(value: Any, path: str) -> Any:
        return None if value is None else inner(value, path)

    return decode


def _tuple_of(inner: Decoder) -> Decoder:
    def decode(value: Any, path: str) -> tuple[Any, ...]:
        if type(value) is not list:
            raise DecodeError(f"{path}: expected an array")
        return tuple([inner(item, f"{path}[{n}]") for n, item in enumerate(value)])

    return decode


def _mapping_of(inner: Decoder) -> Decoder:
    def decode(value: Any, path: str) -> dict[str, Any]:
        if type(value) is not dict:
            raise DecodeError(f"{path}: expected an object")
        out: dict[str, Any] = {}
        for k, v in value.items():
            out[k] = inner(v, f"{path}.{k}")
        return out

    return decode


def _dataclass_decoder(cls: type[Any]) -> Decoder:
    def decode(value: Any, path: str) -> Any:
        return cls.from_dict(value, path=path)

    return decode


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
        raise TypeError(f"unsupported union {tp!r}")
    return tp, False


def decoder_for(tp: Any) -> Decoder:
    inner, optional = _unwrap_optional(tp)
    dec = _plain_decoder_for(inner)
    return _optional(dec) if optional else dec


def _plain_decoder_for(tp: Any) -> Decoder:
    if tp is str:
        return _decode_str
    if tp is bool:
        return _decode_bool
    if tp is int:
        return _decode_int
    if tp is float:
        return _decode_float
    if tp is datetime:
        return parse_utc
    if tp is date:
        return _decode_date
    if tp is Any:
        return _decode_any
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_decoder(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_decoder(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _tuple_of(decoder_for(args[0]))
    if origin is dict and args and args[0] is str:
        return _mapping_of(decoder_for(args[1]))
    raise TypeError(f"unsupported contract type {tp!r}")


def encoder_for(tp: Any) -> Encoder:
    """None means the value is already JSON as it is (str, int, float, bool, None, str-enum)."""
    inner, optional = _unwrap_optional(tp)
    enc = _plain_encoder_for(inner)
    if enc is None or not optional:
        return enc
    plain = enc

    def encode_optional(value: Any) -> Any:
        return None if value is None else plain(value)

    return encode_optional


def _plain_encoder_for(tp: Any) -> Encoder:
    if tp in (str, bool, int, float, Any):
        return None
    if tp is datetime:
        return format_utc
    if tp is date:
        return date.isoformat
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        # StrEnum members are str: json.dumps writes their value without help.
        return None if issubclass(tp, str) else (lambda v: v.value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return lambda v: v.to_dict()
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is tuple:
        item = encoder_for(args[0])
        if item is None:
            return list
        item_enc = item
        return lambda v: [item_enc(x) for x in v]
    if origin is dict:
        val = encoder_for(args[1])
        if val is None:
            return dict
        val_enc = val
        return lambda v: {k: val_enc(x) for k, x in v.items()}
    raise TypeError(f"unsupported contract type {tp!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: Any
    decode: Decoder
    encode: Encoder
    required: bool
    default: Any  # _MISSING when required
    default_factory: Callable[[], Any] | None
    doc: str


def field_specs(cls: type[Any]) -> tuple[FieldSpec, ...]:
    """Field specs of a contract dataclass, computed once per class."""
    cached: tuple[FieldSpec, ...] | None = cls.__dict__.get("_field_specs_cache")
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        has_default = f.default is not dataclasses.MISSING
        factory = None if f.default_factory is dataclasses.MISSING else f.default_factory
        specs.append(
            FieldSpec(
                name=f.name,
                type=tp,
                decode=decoder_for(tp),
                encode=encoder_for(tp),
                required=not has_default and factory is None,
                default=f.default if has_default else _MISSING,
                default_factory=factory,
                doc=str(f.metadata.get("doc", "")),
            )
        )
    result = tuple(specs)
    type.__setattr__(cls, "_field_specs_cache", result)
    return result


def decode_fields(cls: type[Any], data: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Decode the fields of `cls` out of `data`; unknown keys are ignored (never copied)."""
    decoder: Callable[[Any, str], dict[str, Any]] | None = cls.__dict__.get("_decoder_cache")
    if decoder is None:
        decoder = _compile_decoder(cls)
        type.__setattr__(cls, "_decoder_cache", decoder)
    return decoder(data, path)


def _compile_decoder(cls: type[Any]) -> Callable[[Any, str], dict[str, Any]]:
    """Generate a straight-line decoder for `cls` (what dataclasses do for __init__): the
    stream worker decodes every raw record, and a loop of per-field calls costs several times
    more. Scalars and enums are checked inline; other types call their decoder."""
    decoder: Callable[[Any, str], dict[str, Any]] = _generate(cls, construct=False)
    return decoder


def _generate(cls: type[Any], *, construct: bool) -> Callable[[Any, str], Any]:
    """The decoder of `cls`'s fields. With `construct` it also does what the dataclass's own
    __init__ does (default or default factory of a missing field, object.__setattr__ of each
    field, __post_init__) and returns the instance; otherwise it returns the decoded keyword
    arguments. Both come from the same field specs, checks and messages."""
    env: dict[str, Any] = {"DecodeError": DecodeError, "MISSING": _MISSING}
    lines = [
        "def decode(data, path):",
        "    if type(data) is not dict:",
        "        raise DecodeError((path or 'record') + ': expected an object')",
        "    prefix = path + '.' if path else ''",
        "    get = data.get",
    ]
    if construct:
        env.update(new=object.__new__, cls=cls, setattr_=object.__setattr__)
        lines.append("    obj = new(cls)")
    else:
        lines.append("    kw = {}")

    def store(name: str, expr: str) -> str:
        return f"setattr_(obj, {name!r}, {expr})" if construct else f"kw[{name!r}] = {expr}"

    simple = {str: "a string", int: "an integer", bool: "true or false"}
    for n, spec in enumerate(field_specs(cls)):
        name = spec.name
        inner, optional = _unwrap_optional(spec.type)
        lines.append(f"    v = get({name!r}, MISSING)")
        if spec.required:
            lines.append("    if v is MISSING:")
            lines.append(
                f"        raise DecodeError(prefix + {name + ': required field missing'!r})"
            )
        elif construct:
            lines.append("    if v is MISSING:")
            if spec.default_factory is not None:
                env[f"factory_{n}"] = spec.default_factory
                lines.append(f"        {store(name, f'factory_{n}()')}")
            else:
                env[f"default_{n}"] = spec.default
                lines.append(f"        {store(name, f'default_{n}')}")
            lines.append("    else:")
        else:
            lines.append("    if v is not MISSING:")
        b = "    " if spec.required else "        "
        none_ok = "v is not None and " if optional else ""
        if inner in simple:
            lines.append(f"{b}if {none_ok}type(v) is not {inner.__name__}:")
            lines.append(
                f"{b}    raise DecodeError(prefix + {name + ': expected ' + simple[inner]!r})"
            )
            lines.append(f"{b}{store(name, 'v')}")
        elif isinstance(inner, type) and issubclass(inner, enum.Enum):
            env[f"members_{n}"] = {m.value: m for m in inner}
            msg = f"{name}: not one of the {inner.__name__} values"
            lines.append(f"{b}e = members_{n}.get(v) if isinstance(v, str) else None")
            cond = "e is None and v is not None" if optional else "e is None"
            lines.append(f"{b}if {cond}:")
            lines.append(f"{b}    raise DecodeError(prefix + {msg!r})")
            lines.append(f"{b}{store(name, 'e')}")
        elif inner is datetime:
            # Inlined parse_utc: three timestamps in every flow event.
            env["fromiso"] = datetime.fromisoformat
            env["UTC"] = UTC
            if optional:
                lines.append(f"{b}if v is None:")
                lines.append(f"{b}    {store(name, 'None')}")
                lines.append(f"{b}else:")
                b += "    "
            wrong = f"{name}: expected an ISO-8601 timestamp string"
            bad = f"{name}: not an ISO-8601 timestamp"
            naive = f"{name}: timestamp must carry a UTC offset"
            out_of_range = f"{name}: timestamp out of range in UTC"
            lines += [
                f"{b}if type(v) is not str:",
                f"{b}    raise DecodeError(prefix + {wrong!r})",
                f"{b}try:",
                f"{b}    t = fromiso(v)",
                f"{b}except ValueError:",
                f"{b}    raise DecodeError(prefix + {bad!r}) from None",
                f"{b}if t.tzinfo is None:",
                f"{b}    raise DecodeError(prefix + {naive!r})",
                f"{b}if t.tzinfo is not UTC:",
                f"{b}    try:",
                f"{b}        t = t.astimezone(UTC)",
                f"{b}    except OverflowError:",
                f"{b}        raise DecodeError(prefix + {out_of_range!r}) from None",
                f"{b}{store(name, 't')}",
            ]
        else:
            env[f"dec_{n}"] = spec.decode
            lines.append(f"{b}{store(name, f'dec_{n}(v, prefix + {name!r})')}")
    if construct:
        post_init = getattr(cls, "__post_init__", None)
        if post_init is not None:
            env["post_init"] = post_init
            lines.append("    post_init(obj)")
        lines.append("    return obj")
    else:
        lines.append("    return kw")
    exec("\n".join(lines), env)  # noqa: S102 (generated from type hints)  # nosec B102
    decoder: Callable[[Any, str], Any] = env["decode"]
    return decoder


def build(cls: type[Any], data: Mapping[str, Any], path: str) -> Any:
    """Decode `data` into an instance of the dataclass `cls`, as `cls(**decode_fields(cls,
    data, path))` would, in one generated function per class with no keyword dictionary in
    between (the stream worker builds every raw record it reads this way)."""
    builder: Callable[[Any, str], Any] | None = cls.__dict__.get("_builder_cache")
    if builder is None:
        builder = _generate(cls, construct=True)
        type.__setattr__(cls, "_builder_cache", builder)
    return builder(data, path)


def encode_fields(obj: Any) -> dict[str, Any]:
    """The JSON form of a contract dataclass's fields (no record_type/schema_version)."""
    return encoder_of(type(obj), header=False)(obj)


def encoder_of(cls: type[Any], *, header: bool) -> Callable[[Any], dict[str, Any]]:
    """The generated encoder of `cls` (with `record_type` and `schema_version` first when
    `header`), compiled once per class."""
    attr = "_encoder_cache_h" if header else "_encoder_cache"
    encoder: Callable[[Any], dict[str, Any]] | None = cls.__dict__.get(attr)
    if encoder is None:
        encoder = _compile_encoder(cls, header=header)
        type.__setattr__(cls, attr, encoder)
    return encoder


def _compile_encoder(cls: type[Any], *, header: bool) -> Callable[[Any], dict[str, Any]]:
    """One dict display per class instead of a loop over the field specs: the identity
    worker and the site agent encode every record. Timestamps are written inline as
    format_utc does (UTC, 'Z'); other non-JSON types call their spec's encoder."""
    env: dict[str, Any] = {"UTC": UTC, "fmt": format_utc}
    items: list[str] = []
    pre: list[str] = []
    if header:
        env["record_type"] = cls.record_type
        env["schema_version"] = cls.schema_version
        items += ["'record_type': record_type", "'schema_version': schema_version"]
    for n, spec in enumerate(field_specs(cls)):
        name = spec.name
        inner, optional = _unwrap_optional(spec.type)
        if spec.encode is None:
            items.append(f"{name!r}: o.{name}")
        elif inner is datetime:
            # format_utc inline for UTC values (what the decoder yields); anything else
            # (another offset, naive) goes through format_utc itself.
            pre.append(f"    t = o.{name}")
            if optional:
                pre.append("    if t is not None:")
                ind = "        "
            else:
                ind = "    "
            pre += [
                f"{ind}if t.tzinfo is UTC:",
                f"{ind}    t = t.isoformat().replace('+00:00', 'Z')",
                f"{ind}else:",
                f"{ind}    t = fmt(t)",
                f"    v_{n} = t",
            ]
            items.append(f"{name!r}: v_{n}")
        else:
            env[f"enc_{n}"] = spec.encode
            items.append(f"{name!r}: enc_{n}(o.{name})")
    body = ", ".join(items)
    lines = ["def encode(o):", *pre, f"    return {{{body}}}"]
    exec("\n".join(lines), env)  # noqa: S102 (generated from type hints)  # nosec B102
    encoder: Callable[[Any], dict[str, Any]] = env["encode"]
    return encoder


class WireObject:
    """Mixin for nested contract dataclasses (no record envelope fields)."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return encode_fields(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str = "") -> typing.Self:
        result: typing.Self = build(cls, data, path)
        return result
