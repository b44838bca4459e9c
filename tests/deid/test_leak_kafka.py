"""The PHI leak test through real Kafka: 100,000 synthetic patient records with identifiers
go in, and not one identifier string appears anywhere in the regional topic's bytes."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deid.contracts import FlowRecord, open_envelope, raw_topic
from deid.keystore import PatientKeyStore
from deid.policy import load_policy, sign_policy
from deid.testing.synthetic import CITIES, FIRST, LAST, STREETS, SyntheticSite
from deid.worker import DeidWorker, WorkerConfig
from tests.deid.kafka_helpers import consume_all, create_topics, produce

pytestmark = pytest.mark.kafka

RECORDS = 100_000
PATIENTS = 20_000
_SIGNATURE = re.compile(rb'"signature":"[A-Za-z0-9+/]{86}=="')
_DIGITS = bytes.maketrans(b"0123456789", b"\x01" * 10)


def _strings(records: list[dict[str, Any]]) -> set[str]:
    """Every string value (and key) of the records, nested lists and objects included."""
    out: set[str] = set()
    stack: list[Any] = list(records)
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            out.update(value)
            for v in value.values():
                if type(v) is str:
                    out.add(v)
                elif isinstance(v, list | dict):
                    stack.append(v)
        elif isinstance(value, list):
            stack.extend(value)
        elif type(value) is str:
            out.add(value)
    return out


def test_no_identifier_reaches_the_regional_topic(
    kafka_bootstrap: str,
    site_code: str,
    keystore: PatientKeyStore,
    site_key: Ed25519PrivateKey,
    governance_key: Ed25519PrivateKey,
    policy_doc: dict[str, Any],
) -> None:
    t0 = time.monotonic()
    site = SyntheticSite(site_code, seed=100, keystore=keystore)
    patients = site.patients(PATIENTS)
    events = site.flow_events(patients, RECORDS - 11)
    raw = [
        *(e.encode() for e in events),
        *(c.encode() for c in site.census()),
        site.heartbeat().encode(),
    ]
    assert len(raw) == RECORDS
    create_topics(kafka_bootstrap, [raw_topic(site_code)])
    produce(kafka_bootstrap, raw_topic(site_code), site_code.encode(), raw)
    del raw
    print(f"generated and produced in {time.monotonic() - t0:.1f} s")

    config = WorkerConfig(
        site_code=site_code,
        bootstrap=kafka_bootstrap,
        output_topic=f"test.{site_code}.regional",
        control_topic=f"test.{site_code}.control",
        regional_deadletter_topic=f"test.{site_code}.deadletter",
        exit_when_idle=2.0,
        window_max_seconds=2.0,
        stats_interval=60,
    )
    policy = load_policy(sign_policy(policy_doc, governance_key), governance_key.public_key())
    worker = DeidWorker(config, signing_key=site_key, keystore=keystore, policy=policy)
    started = time.monotonic()
    assert worker.run() == 0
    print(f"worker: {RECORDS} records in {time.monotonic() - started:.1f} s")
    assert worker.counters.processed == RECORDS
    assert worker.counters.dead_lettered == 0

    t0 = time.monotonic()
    messages = consume_all(kafka_bootstrap, config.output_topic)
    blob = b"\n".join(
        b"".join([m.value() or b"", m.key() or b"", *(v or b"" for _, v in m.headers() or [])])
        for m in messages
    )
    # Every envelope verifies; the released records cover the input.
    records = []
    for m in messages:
        records.extend(open_envelope(m.value(), site_key.public_key(), site_code=site_code).records)
    flows = Counter(r.audience for r in records if isinstance(r, FlowRecord))
    assert min(flows.values()) > 0.5 * len(events)
    assert len(flows) == 3

    # Signatures are 64 random bytes in base64: drop them before substring searches, so a
    # random "Oren" inside one is not mistaken for a leak.
    text = _SIGNATURE.sub(b'"signature":""', blob)
    assert b"@" not in text  # e-mail addresses
    assert b"example.org" not in text
    assert b" " not in text  # names, addresses and free text all contain spaces
    for word in {*FIRST, *LAST, *STREETS, *CITIES}:
        assert word.encode() not in text, f"{word!r} found in the regional topic"
    marked = text.translate(_DIGITS)
    d = b"\x01"
    assert marked.find(d * 3 + b"-" + d * 2 + b"-" + d * 4) == -1  # SSN shape
    assert marked.find(d * 3 + b"-" + d * 3 + b"-" + d * 4) == -1  # phone shape
    mrns = {p.phi.mrn for p in patients}
    start = text.find(b"MR")
    while start != -1:
        assert text[start : start + 10].decode(errors="replace") not in mrns
        start = text.find(b"MR", start + 1)

    # Every string value of every record, parsed: no identifier equals or contains one.
    identifiers: dict[str, set[str]] = {
        k: set() for k in ("mrn", "name", "address", "phone", "email", "ssn", "zip")
    }
    births = set()
    for p in patients:
        for kind, value in p.identifiers.items():
            if kind == "birth_date":
                births.add(value)
            else:
                identifiers[kind].add(value)
    strings: set[str] = set()
    for m in messages:
        envelope = json.loads(m.value())
        strings |= _strings([{k: v for k, v in envelope.items() if k != "records"}])
        strings |= _strings(envelope["records"])
    for kind, values in identifiers.items():
        assert not (strings & values), f"a {kind} is in the regional topic"
    assert not ({s[:10] for s in strings} & births), "a date of birth is in the regional topic"
    print(f"consumed and scanned in {time.monotonic() - t0:.1f} s")
    zips = identifiers["zip"]
    for s in strings:
        if _is_random_id(s):
            continue  # its digits are random, not a ZIP code
        # The fixture's site code is random hex too ("t70392afb30" once held a synthetic ZIP);
        # it names the hospital in every envelope, so its digits are not searched.
        for run in re.findall(r"\d+", s.replace(site_code, " ")):
            assert run not in zips, f"a ZIP code is in the regional topic: {s!r}"


def _is_random_id(s: str) -> bool:
    return bool(
        re.fullmatch(
            # UUIDs, hex digests, surrogate ids, and Ed25519 signatures (64 bytes in base64)
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16}|[0-9a-f]{64}"
            r"|sg-[a-z2-7]{24}|[A-Za-z0-9+/]{86}==",
            s,
        )
    )
