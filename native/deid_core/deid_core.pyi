"""Type stubs of the native DE-ID core (src/lib.rs)."""

from collections.abc import Callable, Sequence
from typing import Any

__version__: str

Slice = tuple[str, int, list[str], list[str], int, int]

def transform_flow_window(
    messages: list[bytes | None],
    site_code: str,
    key_lookup: Callable[[list[tuple[str, str]]], Sequence[bytes | None | bool]],
    rules: list[dict[str, Any]],
    restricted_zip3: list[str],
    policy_version: int,
    window_id: str,
    produced_at: str,
) -> tuple[str | None, list[int], int, int, list[Slice]]: ...
def reencode_flow_events(
    messages: list[bytes | None], site_code: str
) -> list[tuple[str, str] | None]: ...
def vocabularies() -> dict[str, list[str]]: ...
