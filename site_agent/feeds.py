"""Feed health: when each feed last spoke, and whether it is stale.

A feed is one source of messages, named as the contract's ``FeedStatus.name``: an HL7 sending
application by its MSH-3 (kind ``hl7-adt``), ``fhir`` for the FHIR push endpoint and
``fhir-poll`` for the poller (kinds of the same name). "Spoke" means a message we could read
(AA or AE); rejected bytes count as errors but do not prove the interface is healthy. A feed
that has not spoken for ``stale_after`` (default 10 minutes, issue 3) is stale, and so is an
expected feed that never spoke. The time is the agent's receipt time, not the sender's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from deid.contracts import FeedStatus

__all__ = ["FeedHealth", "FeedState"]


@dataclass(slots=True)
class FeedState:
    name: str
    source: str  # FeedStatus.source: 'hl7-adt', 'fhir', 'fhir-poll', ...
    last_message_at: datetime | None = None
    messages_total: int = 0
    errors_total: int = 0


class FeedHealth:
    def __init__(self, stale_after: timedelta, expected: tuple[str, ...] = ()) -> None:
        self.stale_after = stale_after
        self.feeds: dict[str, FeedState] = {}
        self.dirty: set[str] = set()
        self._was_stale: dict[str, bool] = {}
        for name in expected:
            self.feeds[name] = FeedState(name=name, source=_kind(name))

    def spoke(self, name: str, at: datetime, *, error: bool = False, kind: str = "") -> None:
        f = self.feeds.get(name)
        if f is None:
            f = self.feeds[name] = FeedState(name=name, source=kind or _kind(name))
        f.last_message_at = at
        f.messages_total += 1
        if error:
            f.errors_total += 1
        self.dirty.add(name)

    def error(self, name: str, *, kind: str = "") -> None:
        f = self.feeds.get(name)
        if f is None:
            f = self.feeds[name] = FeedState(name=name, source=kind or _kind(name))
        f.errors_total += 1
        self.dirty.add(name)

    def is_stale(self, name: str, now: datetime) -> bool:
        f = self.feeds.get(name)
        if f is None or f.last_message_at is None:
            return True
        return now - f.last_message_at > self.stale_after

    def any_fresh(self, now: datetime) -> bool:
        return any(not self.is_stale(n, now) for n in self.feeds)

    def newly_changed(self, now: datetime) -> list[str]:
        """Feeds whose stale flag flipped since the last call (to publish promptly)."""
        out = []
        for name in self.feeds:
            stale = self.is_stale(name, now)
            if self._was_stale.get(name) != stale:
                if name in self._was_stale:
                    out.append(name)
                self._was_stale[name] = stale
        return out

    def statuses(self, now: datetime) -> tuple[FeedStatus, ...]:
        return tuple(
            FeedStatus(
                name=f.name,
                source=f.source,
                last_message_at=f.last_message_at,
                stale=self.is_stale(f.name, now),
                messages_total=f.messages_total,
                errors_total=f.errors_total,
            )
            for f in sorted(self.feeds.values(), key=lambda f: f.name)
        )

    def rows(self, names: set[str]) -> list[tuple[str, str, str | None, int, int]]:
        out = []
        for n in names:
            f = self.feeds[n]
            at = None if f.last_message_at is None else f.last_message_at.isoformat()
            out.append((f.name, f.source, at, f.messages_total, f.errors_total))
        return out

    def restore(self, rows: list[tuple[str, str, str | None, int, int]]) -> None:
        for name, source, at, total, errors in rows:
            self.feeds[name] = FeedState(
                name=name,
                source=source,
                last_message_at=None if at is None else datetime.fromisoformat(at),
                messages_total=total,
                errors_total=errors,
            )


def _kind(name: str) -> str:
    """The kind of a feed known only by name (configured ``expected_feeds``)."""
    return name if name in ("fhir", "fhir-poll") else "hl7-adt"
