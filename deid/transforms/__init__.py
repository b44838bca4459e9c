"""The de-identification transforms: pure functions, no Kafka, no I/O."""

from deid.transforms.census import (
    derived_event_id,
    suppress_cells,
    transform_census,
    transform_heartbeat,
)
from deid.transforms.flow import Demographics, demographics, transform_flow
from deid.transforms.generalise import age_at, generalise_timestamp
from deid.transforms.kanon import enforce_k
from deid.transforms.verify import scan_text, verify_slice
from deid.transforms.window import HeldSlice, WindowResult, transform_window

__all__ = [
    "Demographics",
    "HeldSlice",
    "WindowResult",
    "age_at",
    "demographics",
    "derived_event_id",
    "enforce_k",
    "generalise_timestamp",
    "scan_text",
    "suppress_cells",
    "transform_census",
    "transform_flow",
    "transform_heartbeat",
    "transform_window",
    "verify_slice",
]
