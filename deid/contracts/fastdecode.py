"""A C-speed decoder for the stream worker's commonest record, `raw.flow_event`.

msgspec decodes and type-checks the JSON straight into the `RawFlowEvent` dataclass (calling
its __post_init__, so the contract's own checks run), about three times faster than parsing
to a dict and building the dataclass in Python. It is only a fast path: anything it does not
accept cleanly -- another record type, an older schema version, a naive timestamp, any
validation error -- goes to the reference decoder (`Record.from_dict`), which decides and
words the error. So the house rule holds unchanged: an error message names the field and the
expected type, never the value (msgspec's own messages are never shown).

What msgspec accepts here is no wider than what the reference decoder accepts: strict JSON
types (no bool for an int, no float for an int, no string for a number), enum values, ISO-8601
timestamps with an offset (converted to UTC as the reference decoder does), the same required
fields and defaults; unknown keys are ignored by both.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import msgspec

from deid.contracts.raw import RawFlowEvent


class _Head(msgspec.Struct):
    record_type: str = ""
    schema_version: int = 0


_HEAD = msgspec.json.Decoder(_Head)
_FLOW = msgspec.json.Decoder(RawFlowEvent)
_FLOW_TYPE = RawFlowEvent.record_type
_FLOW_VERSION = RawFlowEvent.schema_version
_setattr = object.__setattr__


def fast_flow_event(data: bytes) -> RawFlowEvent | None:
    """The RawFlowEvent in `data` if it is one in the current schema version and decodes
    cleanly; None means: use the reference decoder (which also words any error)."""
    try:
        head = _HEAD.decode(data)
        if head.record_type != _FLOW_TYPE or head.schema_version != _FLOW_VERSION:
            return None
        event = _FLOW.decode(data)
    except (msgspec.DecodeError, ValueError, TypeError):
        return None
    for name in ("produced_at", "occurred_at", "decision_to_admit_at"):
        value: Any = getattr(event, name)
        if value is None or value.tzinfo is UTC:
            continue
        if value.tzinfo is None:
            return None  # naive: the reference decoder refuses it, with its message
        try:
            _setattr(event, name, value.astimezone(UTC))
        except OverflowError:
            return None  # outside datetime's range in UTC: the reference decoder words it
    return event
