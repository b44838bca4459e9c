"""Independent verification of a release against its policy.

This code shares nothing with the transforms on purpose: it re-derives every property from
the output alone (k over the quasi-identifiers, l-diversity, thresholds, complementary
suppression, allowed fields, generalisation, the ZIP3 and age top-code rules) and scans the
exact text to be released for identifier patterns. The worker holds any window slice that
fails; `python -m deid verify` runs the same checks on a file.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from itertools import chain
from operator import itemgetter
from typing import Any

from deid.contracts.regional import CensusRecord, FlowRecord, HeartbeatRecord
from deid.contracts.vocabulary import GRANULARITY_ORDER, DateGranularity
from deid.policy import AGE_TOP_CODE, CENSUS_COUNT_FIELDS, RELEASABLE_FIELDS, AudienceRule
from deid.transforms.census import relation_leaks
from deid.transforms.generalise import granularity_of
from deid.transforms.kanon import WIDE_AGE_BANDS
from deid.zip3 import RESTRICTED_ZIP3

KIND_OF_RECORD_TYPE = {
    CensusRecord.record_type: "census",
    FlowRecord.record_type: "flow",
    HeartbeatRecord.record_type: "heartbeat",
}

# Every key a regional record of each kind may have on the wire.
_KNOWN_FIELDS: dict[str, frozenset[str]] = {
    kind: frozenset({"record_type", "schema_version"} | {f.name for f in fields(cls)})
    for kind, cls in (
        ("census", CensusRecord),
        ("flow", FlowRecord),
        ("heartbeat", HeartbeatRecord),
    )
}

# Identifier shapes that must never appear in released text (164.514(b)(2)(i)(B),(D),(F),(G)).
# Matches are reported by kind only: the matched text itself may be PHI.
IDENTIFIER_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ssn", re.compile(r"(?<![0-9A-Za-z-])\d{3}-\d{2}-\d{4}(?![0-9A-Za-z])")),
    ("email", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    (
        "phone",
        re.compile(r"(?<![0-9A-Za-z:.-])\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}(?![0-9A-Za-z])"),
    ),
    (
        "street address",
        re.compile(
            r"\b\d{1,6} [A-Z][a-z]+ (?:St|Street|Ave|Avenue|Rd|Road|Dr|Drive|Lane|Ln|Blvd|Way"
            r"|Court|Ct)\b"
        ),
    ),
)

# Python's regex engine runs at tens of nanoseconds a character, too slow for every byte the
# worker releases. So digits are first mapped to one marker byte (bytes.translate runs at
# memory speed) and fixed "needles" are searched with bytes.find; the exact pattern runs only
# on the few hundred bytes around a needle.
_D = b"\x01"
# Digits become one marker byte, "-" and "." another, the space and capital letters one each,
# so that each identifier shape is one or a few fixed needles.
_S = b"\x02"
_SP = b"\x04"
_U = b"\x03"
_DIGITS_TO_MARKER = bytes.maketrans(
    b"0123456789-. ABCDEFGHIJKLMNOPQRSTUVWXYZ", _D * 10 + _S * 2 + _SP + _U * 26
)
# Needles are chosen so that the identifiers the contracts do carry (UUIDs: 8-4-4-4-12 hex
# groups; dates: 4-2-2 digits; ISO weeks 2026-W48; times 19:10:00.123456) cannot contain them.
_NEEDLES: dict[str, tuple[bytes, ...]] = {
    "ssn": (_D * 3 + _S + _D * 2 + _S + _D * 4,),
    "email": (b"@",),
    "phone": (
        _D * 3 + _S + _D * 3 + _S + _D * 4,
        _D * 3 + _SP + _D * 3 + _SP + _D * 4,
        b")" + _D * 3 + _S + _D * 4,
        b")" + _SP + _D * 3 + _S + _D * 4,
    ),
    "street address": (_D + _SP + _U,),
}
# A needle whose marked form holds a byte that only one original byte maps to (")", the
# space) can only be present when that byte is. Canonical JSON has no space or ")" outside
# string values and released records rarely carry either, so one memchr-speed `in` test on
# the original bytes skips most searches: bytes.find is slow for needles ending in the digit
# marker, the commonest byte of the marked text.
_GATES: dict[bytes, bytes] = {
    needle: gate
    for needles in _NEEDLES.values()
    for needle in needles
    for marker, gate in ((b")", b")"), (_SP, b" "))
    if marker in needle
}
_PATTERNS = dict(IDENTIFIER_PATTERNS)
_CONTEXT = 96


def scan_text(text: str | bytes) -> list[str]:
    """Kinds of identifier patterns found in `text` (str, or its UTF-8 bytes), never the
    matches themselves."""
    data = text.encode() if isinstance(text, str) else text
    marked = data.translate(_DIGITS_TO_MARKER)
    found = []
    for kind, needles in _NEEDLES.items():
        pattern = _PATTERNS[kind]
        hit = False
        for needle in needles:
            gate = _GATES.get(needle)
            if gate is not None and gate not in data:
                continue
            pos = marked.find(needle)
            while pos != -1 and not hit:
                window = data[max(0, pos - _CONTEXT) : pos + len(needle) + _CONTEXT]
                hit = pattern.search(window.decode("utf-8", "ignore")) is not None
                pos = marked.find(needle, pos + 1)
            if hit:
                break
        if hit:
            found.append(kind)
    return found


def allowed_age_bands(rule: AudienceRule) -> frozenset[str]:
    """Labels an age band may take under `rule`: its bands, the wide bands k-anonymity may
    widen to, and the single top-coded '90+'. None (withheld) is always allowed."""
    bands = rule.age_bands
    labels = {f"{bands[i]}-{bands[i + 1] - 1}" for i in range(len(bands) - 1)}
    labels |= {wide for _, wide in WIDE_AGE_BANDS}
    # 90 and over must be the single top-coded band: no band may reach past 89.
    labels = {b for b in labels if int(b.split("-")[1]) < AGE_TOP_CODE}
    return frozenset(labels | {f"{AGE_TOP_CODE}+"})


_RANK = {g: n for n, g in enumerate(GRANULARITY_ORDER)}


def _rank_of(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    g = granularity_of(value)
    return None if g is None else _RANK[g]


def verify_slice(
    kind: str,
    records: Sequence[Mapping[str, Any]],
    rule: AudienceRule,
    *,
    policy_version: int | None,
    audience: str,
    text: str | None = None,
) -> list[str]:
    """Problems of one slice (one record kind, one audience, one release window); empty when
    it may be released. `text` is the exact serialised form to be released, if at hand.

    Checks run column by column over the distinct values of the slice, so verification costs
    little more than one pass over each field (it runs on every record the worker releases).
    Problems name the first offending record."""
    problems: list[str] = []
    if not records:
        return problems
    add = problems.append
    expected_type = {v: k for k, v in KIND_OF_RECORD_TYPE.items()}[kind]
    known = _KNOWN_FIELDS[kind]

    def first(predicate: Any) -> int:
        return next(n for n, r in enumerate(records) if predicate(r))

    def column(name: str) -> set[Any]:
        try:
            return set(map(itemgetter(name), records))
        except KeyError:  # a record without the field: treat it as null
            return {_hashable(r.get(name)) for r in records}
        except TypeError:  # lists or objects (forecast, feeds, ...)
            return {_hashable(r.get(name)) for r in records}

    if column("record_type") != {expected_type}:
        add(f"record {first(lambda r: r.get('record_type') != expected_type)}: "
            f"record_type is not {expected_type}")  # fmt: skip
    if kind != "heartbeat" and column("policy_version") != {policy_version}:
        n = first(lambda r: r.get("policy_version") != policy_version)
        add(f"record {n}: policy_version differs from the policy applied")
    if column("audience") != {audience}:
        add(f"record {first(lambda r: r.get('audience') != audience)}: "
            "audience differs from the slice")  # fmt: skip
    # One pass over every key of every record (a record's keys are its fields).
    if not known.issuperset(chain.from_iterable(records)):
        outside = set().union(*(r.keys() - known for r in records))
        add(f"fields outside the contract: {sorted(outside)}")
    empty = {None, (), "", _EMPTY_DICT}
    for name in sorted(RELEASABLE_FIELDS[kind] - rule.fields):
        if column(name) - empty:
            n = first(lambda r, f=name: _hashable(r.get(f)) not in empty)
            add(f"record {n}: field {name} is not allowed for {audience}")
    floor = _RANK[rule.date_granularity]
    if kind == "flow":
        floor = max(floor, _RANK[DateGranularity.DAY])
        for value in column("occurred") - {None}:
            rank = _rank_of(value)
            if rank is None or rank < floor:
                n = first(lambda r, v=value: r.get("occurred") == v)
                add(f"record {n}: occurred finer than {GRANULARITY_ORDER[floor].value}")
        bad_bands = column("age_band") - allowed_age_bands(rule) - {None}
        if bad_bands:
            n = first(lambda r: r.get("age_band") in bad_bands)
            add(f"record {n}: age_band is not a policy band (90+ top-coded)")
        for z in column("zip3") - {None}:
            if not isinstance(z, str) or len(z) != 3 or not z.isdigit():
                n = first(lambda r, v=z: r.get("zip3") == v)
                add(f"record {n}: zip3 is not three digits")
            elif z in RESTRICTED_ZIP3:
                n = first(lambda r, v=z: r.get("zip3") == v)
                add(f"record {n}: zip3 of an area under 20,000 people (must be 000)")
        problems.extend(_k_problems(records, rule))
    elif kind == "census":
        for name in ("as_of", "last_message_at"):
            for value in column(name) - {None}:
                rank = _rank_of(value)
                if rank is None or rank < floor:
                    n = first(lambda r, f=name, v=value: r.get(f) == v)
                    add(f"record {n}: {name} finer than {rule.date_granularity.value}")
        threshold = rule.small_cell_threshold
        if threshold > 0:
            for n, record in enumerate(records):
                for name in CENSUS_COUNT_FIELDS:
                    value = record.get(name)
                    if isinstance(value, int) and 1 <= value <= threshold:
                        add(f"record {n}: {name} is a small cell (1..{threshold})")
                problems.extend(f"record {n}: {leak}" for leak in relation_leaks(record))
    if text is not None:
        problems.extend(f"identifier pattern in output: {kind}" for kind in scan_text(text))
    return _dedupe(problems)


_EMPTY_DICT = ("__empty_dict__",)


def _column_list(records: Sequence[Mapping[str, Any]], name: str) -> list[Any]:
    try:
        return list(map(itemgetter(name), records))
    except KeyError:
        return [r.get(name) for r in records]


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items())) or _EMPTY_DICT
    return value


def _dedupe(problems: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for p in problems:
        seen.setdefault(p, None)
    return list(seen)


def _k_problems(records: Sequence[Mapping[str, Any]], rule: AudienceRule) -> list[str]:
    problems: list[str] = []
    qis = rule.quasi_identifiers
    if not qis:
        return problems
    by_window: dict[Any, Sequence[Mapping[str, Any]]]
    windows = set(_column_list(records, "window_id"))
    if len(windows) == 1:  # the worker's case: one slice of one window
        by_window = {windows.pop(): records}
    else:
        grouped: dict[Any, list[Mapping[str, Any]]] = defaultdict(list)
        for r in records:
            grouped[r.get("window_id")].append(r)
        by_window = dict(grouped)
    for window, members in by_window.items():
        keys = list(zip(*(_column_list(members, q) for q in qis), strict=True))
        classes = Counter(keys)
        small = sum(1 for c in classes.values() if c < rule.k)
        if small:
            problems.append(
                f"window {window}: {small} equivalence class(es) smaller than k={rule.k}"
            )
        if rule.l_diversity is not None:
            attr, ell = rule.l_diversity.attribute, rule.l_diversity.l
            values: dict[tuple[Any, ...], set[Any]] = defaultdict(set)
            for key, r in zip(keys, members, strict=True):
                values[key].add(r.get(attr))
            poor = sum(1 for v in values.values() if len(v) < ell)
            if poor:
                problems.append(
                    f"window {window}: {poor} class(es) with fewer than l={ell} values of {attr}"
                )
    return problems
