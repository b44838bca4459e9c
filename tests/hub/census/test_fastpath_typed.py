"""The fast path's typed records (msgspec) against its dict checks and the reference path.

A clean record must take the typed decoder (not the dict fallback) and give the rows the
dict checks and the reference path give. Anything else must end where the reference path
ends: the same rows, or the reference path's refusal, worded by it, without field values.
The codec cases sign the hash of what msgspec would write back, the bytes a forger would
choose: msgspec must not accept what orjson, the reference codec, parses differently.
"""

from __future__ import annotations

import base64
import hashlib
import json
import typing
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson
import pytest

from deid.contracts import CensusRecord, FlowRecord, canonical_json
from deid.contracts.envelope import (
    ENVELOPE_RECORD_TYPE,
    ENVELOPE_VERSION,
    _signed_bytes,
    open_envelope_signed,
)
from deid.signing import generate_signing_key, key_id_for
from hub.census import fastpath
from hub.census.ingest import IngestBatch, envelope_into_batch
from tests.hub.census.test_fastpath import (
    KEY,
    NOW,
    SITE,
    agree,
    census_dict,
    directory,
    fast,
    flow_dict,
    reference,
    seal_dicts,
)


def seal_texts(texts: list[bytes], hashes: list[str] | None = None) -> bytes:
    """An envelope carrying these record texts as they are, signed over ``hashes`` (by
    default the SHA-256 of each text): a site that writes whatever bytes it likes."""
    header = {
        "envelope_version": ENVELOPE_VERSION,
        "site_code": SITE,
        "policy_version": 1,
        "batch_id": str(uuid.uuid4()),
        "key_id": key_id_for(KEY),
        "created_at": "2026-11-23T11:59:00Z",
    }
    hashes = hashes or [hashlib.sha256(t).hexdigest() for t in texts]
    signature = base64.b64encode(KEY.sign(_signed_bytes(header, hashes))).decode()
    head = json.dumps({"record_type": ENVELOPE_RECORD_TYPE, **header}, separators=(",", ":"))
    tail = json.dumps({"record_hashes": hashes, "signature": signature}, separators=(",", ":"))
    return head[:-1].encode() + b',"records":[' + b",".join(texts) + b"]," + tail[1:].encode()


def no_dict_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any) -> None:
        raise AssertionError("a clean record took the dict fallback")

    monkeypatch.setattr(fastpath, "_dict_record", refuse)
    monkeypatch.setattr(fastpath, "_dict_envelope_rows", refuse)


def test_the_typed_records_are_the_contracts_fields_in_canonical_order() -> None:
    for struct, fields, cls in (
        (fastpath._Census, fastpath.CENSUS_FIELDS, CensusRecord),
        (fastpath._Flow, fastpath.FLOW_FIELDS, FlowRecord),
    ):
        names = struct.__struct_fields__
        assert names == tuple(sorted(fields | {"record_type", "schema_version"}))
        hints = typing.get_type_hints(struct, include_extras=True)
        assert typing.get_args(hints["record_type"]) == (cls.record_type,)
        assert typing.get_args(hints["schema_version"]) == (cls.schema_version,)


CLEAN = [
    census_dict(),
    census_dict(unit_code="W1", unit_type="medical_surgical", stale=True, source=None),
    census_dict(
        forecast=[{"horizon_hours": 4, "p10": 1.0, "p50": 2.5, "p90": None}],
        suppressed=["ed_waiting"],
        ed_waiting=None,
    ),
    census_dict(unit_code=None, unit_type="emergency", as_of=None),
    census_dict(unit_code=None, unit_type="medical_surgical"),
    census_dict(audience="peer_hospitals", source="Ünïcode feed ✓"),
    flow_dict(),
    flow_dict(unit_code=None, generalised=["age_band"], occurred="2026-W47"),
    flow_dict(sex="female", zip3=None, acuity=None, date_granularity="hour"),
]


def test_clean_records_take_the_typed_decoder_and_give_the_reference_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    value = seal_dicts(CLEAN)
    ref = reference(value, monkeypatch)
    assert ref.rejections == []
    with monkeypatch.context() as m:
        no_dict_fallback(m)
        typed = fast(value)
    assert typed == (ref.census, ref.flow)
    # The dict checks (the fallback) build the very same rows.
    d = directory()
    entry = d.get(SITE)
    assert entry is not None
    ctx = fastpath._Context(d, entry, SITE, key_id_for(KEY), NOW, "kafka")
    dict_rows = fastpath._dict_envelope_rows(value, KEY.public_key(), ctx)
    assert dict_rows is not None
    assert (dict_rows[1], dict_rows[2]) == typed


@pytest.mark.parametrize(
    "record",
    [
        census_dict(extra_field=1),  # unknown field: the dict checks ignore it, as the contract
        census_dict(forecast=[{"p90": 3.0, "horizon_hours": 1}]),
        census_dict(forecast=[{"horizon_hours": 1, "p10": 1}]),  # an int where a float goes
        census_dict(source="line\nbreak"),  # an escape: orjson parses it all
        flow_dict(extra_field=[1]),
    ],
)
def test_records_the_typed_decoder_leaves_get_the_dict_checks(
    record: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert agree(seal_dicts([census_dict(), record, flow_dict()]), monkeypatch)


def _variants(record: dict[str, Any]) -> list[bytes]:
    canonical = canonical_json(record).encode()
    first = canonical.index(b",")
    return [
        canonical.replace(b'":', b'": '),  # whitespace
        canonical[:first] + b"," + canonical[1:],  # the first key twice
        canonical.replace(b'"occupied_beds":25', b'"occupied_beds":25.0'),
        canonical.replace(b'"occupied_beds":25', b'"occupied_beds":2.5e1'),
        canonical.replace(b'"occupied_beds":25', b'"occupied_beds":025'),
        canonical.replace(b'"occupied_beds":25', b'"occupied_beds":true'),
        canonical.replace(b'"occupied_beds":25', b'"occupied_beds":-0'),
        canonical.replace(b'"policy_version":1', b'"policy_version":1.0'),
        canonical.replace(b'"policy_version":1', b'"policy_version":18446744073709551617'),
        canonical.replace(b'"schema_version":1', b'"schema_version":true'),
        canonical.replace(b'"hl7-adt"', b'"hl7\x01adt"'),  # a raw control character
        canonical.replace(b'"hl7-adt"', b'"hl7\xffadt"'),  # not UTF-8
        canonical.replace(b'"hl7-adt"', b'"hl7\xed\xa0\x80adt"'),  # a surrogate in UTF-8
        canonical.replace(b'"hl7-adt"', b'"hl7\\u0041adt"'),
        canonical.replace(b'"hl7-adt"', b'"hl7\\ud800adt"'),
        canonical.replace(b'"hl7-adt"', b'"hl7\\/adt"'),
        canonical.replace(b'"stale":false', b'"stale":False'),
        canonical.replace(b'"stale":false', b'"stale":NaN'),
        canonical[:-1] + b",}",
        b"\xef\xbb\xbf" + canonical,
        canonical + b" ",
    ]


@pytest.mark.parametrize("n", range(21))
@pytest.mark.parametrize("sign", ["msgspec", "text"])
def test_records_the_codecs_might_read_differently_end_as_the_reference_path_decides(
    n: int, sign: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _variants(census_dict())[n]
    clean = canonical_json(census_dict()).encode()
    signed = text
    if sign == "msgspec":  # the hash of what msgspec writes back, where it decodes at all
        try:
            signed = msgspec.json.encode(msgspec.json.decode(text, type=fastpath._Census))
        except fastpath._DECODE_ERRORS:
            pytest.skip("msgspec refuses it")
    hashes = [hashlib.sha256(clean).hexdigest(), hashlib.sha256(signed).hexdigest()]
    agree(seal_texts([clean, text], hashes), monkeypatch)


def test_the_envelope_is_only_opened_when_open_envelope_would_verify_it() -> None:
    good = seal_texts([canonical_json(census_dict()).encode()])
    assert open_envelope_signed(good, KEY.public_key(), site_code=SITE) is not None
    assert open_envelope_signed(good, KEY.public_key(), site_code="OTHER") is None
    assert open_envelope_signed(good, generate_signing_key().public_key()) is None
    for old, new in [
        (b'"envelope_version":1', b'"envelope_version":1.0'),
        (b'"envelope_version":1', b'"envelope_version":2'),
        (b'"policy_version":1', b'"policy_version":2'),
        (b'"record_type":"regional.envelope"', b'"record_type":"regional.x"'),
        (b'"created_at":"2026-11-23T11:59:00Z"', b'"created_at":"2026-11-23T11:59:00"'),
        (b',"records":[', b',"extra":1,"records":['),
        (b'"record_hashes":["', b'"record_hashes":["0'),
    ]:
        assert open_envelope_signed(good.replace(old, new), KEY.public_key()) is None, new


SECRET = "VALUE-9f3a-never-in-a-reason"


@pytest.mark.parametrize(
    "changes",
    [
        {"source": 12345678},
        {"occupied_beds": SECRET},
        {"occupied_beds": 7_654_321},
        {"audience": SECRET},
        {"unit_type": SECRET},
        {"produced_at": SECRET},
        {"event_id": SECRET},
        {"suppressed": [SECRET, 1]},
        {"stale": SECRET},
    ],
)
def test_refusals_are_worded_by_the_reference_path_without_values(
    changes: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    value = seal_dicts([census_dict(), census_dict(**changes)])
    assert fast(value) is None
    batch = IngestBatch()
    envelope_into_batch(value, directory=directory(), batch=batch, received_at=NOW, via="kafka")
    ref = reference(value, monkeypatch)
    assert batch.rejections == ref.rejections != []
    assert batch.census == ref.census
    for rejection in batch.rejections:
        assert SECRET not in rejection.reason
        assert "7654321" not in rejection.reason
        assert "12345678" not in rejection.reason


def test_a_typed_envelope_of_many_records_matches_the_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    records = []
    for i in range(200):
        at = base + timedelta(seconds=7 * i, microseconds=i * 1001)
        if i % 3:
            records.append(census_dict(produced_at=at.isoformat(), occupied_beds=i % 30))
        else:
            records.append(flow_dict(produced_at=at.isoformat().replace("+00:00", "Z")))
    value = seal_dicts(records)
    with monkeypatch.context() as m:
        no_dict_fallback(m)
        got = fast(value)
    ref = reference(value, monkeypatch)
    assert ref.rejections == []
    assert got == (ref.census, ref.flow)


def test_the_codecs_write_and_read_unescaped_text_alike() -> None:
    """The typed path takes only JSON without a backslash. Every character that may stand
    unescaped in a JSON string must then be written back alike by msgspec and orjson (else a
    hash signed over msgspec's bytes could pass where the reference's differs), and text that
    is not UTF-8 must be refused by both."""
    allowed = "".join(
        chr(c) for c in range(0x20, 0x110000) if c not in (0x22, 0x5C) and not 0xD800 <= c < 0xE000
    )
    assert msgspec.json.encode(allowed) == orjson.dumps(allowed) == b'"' + allowed.encode() + b'"'
    assert msgspec.json.decode(orjson.dumps(allowed), type=str) == allowed
    for bad in (b'"\xff"', b'"\xed\xa0\x80"', b'"\xc0\xaf"', b'"\xf4\x90\x80\x80"', b'"\xe2\x82"'):
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(bad)
        with pytest.raises(UnicodeDecodeError):  # msgspec's refusal of non-UTF-8 text
            msgspec.json.decode(bad, type=str)
    for bad in (b'"\x01"', b'"\x1f"', b'"\t"'):
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(bad)
        with pytest.raises(msgspec.DecodeError):
            msgspec.json.decode(bad, type=str)


@pytest.mark.parametrize("text", [b"25.0", b"2.5e1", b"1e2", b"true", b'"25"', b"NaN", b"-0.0"])
def test_msgspec_takes_only_json_integers_for_integers(text: bytes) -> None:
    for type_ in (int, fastpath._Count, typing.Literal[1]):
        with pytest.raises(msgspec.DecodeError):
            msgspec.json.decode(text, type=type_)  # DecodeError: NaN is no JSON at all
