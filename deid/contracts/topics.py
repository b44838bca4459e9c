"""Every Kafka topic name the DE-ID layer knows, in one place. Records are keyed by site code;
on a site's raw topic the relay also picks the partition by record kind (`raw_partition`), so
each kind stays ordered on one partition."""

from __future__ import annotations

import re

# Site codes become part of topic names: Kafka allows [A-Za-z0-9._-]; the dot is kept out
# because it separates the parts of our topic names.
SITE_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")

REGIONAL_TOPIC = "regional.deid.v1"
"""De-identified, signed envelopes from every site's DE-ID worker to the hub."""
DEADLETTER_TOPIC = "regional.deadletter.v1"
"""Regional dead letters. The DE-ID worker sends here only a payload-free notice (headers:
reason, source topic, partition, offset); the raw bytes stay in the site's own dead-letter
topic, because a raw record that failed to decode may hold PHI in the clear."""
CONTROL_TOPIC = "regional.control.v1"
"""Hub to sites: signed policies (and, for other consumers, erasure requests, directives)."""


def check_site_code(site_code: str) -> str:
    if not SITE_CODE_RE.match(site_code):
        raise ValueError("site code must be 1-32 characters of A-Z a-z 0-9 _ - (no dots)")
    return site_code


def raw_topic(site_code: str) -> str:
    """The site's raw records (PHI encrypted per patient); inside the hospital network."""
    return f"site.{check_site_code(site_code)}.raw.v1"


def held_topic(site_code: str) -> str:
    """Release windows that failed the worker's own verification, with the reason; they stay
    at the site until governance reviews them."""
    return f"site.{check_site_code(site_code)}.held.v1"


def site_deadletter_topic(site_code: str) -> str:
    """Raw messages the worker could not decode or validate, bytes as they were, with the
    reason in headers; inside the hospital network because they may hold PHI."""
    return f"site.{check_site_code(site_code)}.deadletter.v1"


def record_key(site_code: str) -> bytes:
    return check_site_code(site_code).encode()


RECORD_TYPE_HEADER = "record_type"
"""Header the site agent's relay puts on every raw record: its `record_type` (no PHI). The
DE-ID worker reads it to decide whether a record must wait for a release window; it never
trusts it for anything else (the record is decoded and checked as always)."""

CAPACITY_PARTITION = 0
"""Census snapshots and heartbeats: released by the DE-ID worker as soon as they arrive."""
FLOW_PARTITION = 1
"""Patient flow events: gathered in release windows for k-anonymity."""
