"""k-anonymity (and optional l-diversity) over a release window: generalise, then suppress.

Global recoding in the style of Sweeney's Datafly: while more than a small share of the
window sits in equivalence classes smaller than k, generalise the quasi-identifier with the
most distinct values one level up its ladder (age band -> wide band -> withheld, time -> month
-> year -> withheld, anything else -> withheld). Then suppress the records still in classes
smaller than k, and the classes whose sensitive attribute has fewer than l distinct values.
A withheld quasi-identifier is null in the output and named in the record's `generalised`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress
from operator import itemgetter
from typing import Any

from deid.policy import AGE_TOP_CODE, AudienceRule
from deid.transforms.generalise import granularity_of

# Stop generalising once at most this share of the window would need suppression: global
# recoding costs every record detail, suppression costs only the outliers.
DATAFLY_TARGET = 0.05

# The wide bands an age band generalises to before being withheld.
WIDE_AGE_BANDS: tuple[tuple[int, str], ...] = (
    (18, "0-17"),
    (65, "18-64"),
    (AGE_TOP_CODE, "65-89"),
)


def wide_age_band(label: str | None) -> str | None:
    if label is None or label.endswith("+"):
        return label  # '90+' stays top-coded
    lower = int(label.split("-", 1)[0])
    upper = int(label.split("-", 1)[1])
    for limit, wide in WIDE_AGE_BANDS:
        if upper < limit:
            return wide
    # A band that straddles a wide boundary cannot be widened without overlap.
    return None if lower < AGE_TOP_CODE else label


@dataclass
class KResult:
    kept: list[int]
    suppressed: list[int]
    levels: dict[str, int] = field(default_factory=dict)
    l_suppressed: int = 0


class _Ladder:
    """Values of one quasi-identifier for every record at each generalisation level, computed
    only when Datafly climbs to that level (most windows never generalise most attributes)."""

    def __init__(
        self,
        qi: str,
        records: Sequence[dict[str, Any]],
        occurred_at: Sequence[datetime | str],
    ) -> None:
        self.qi = qi
        self.records = records
        self.occurred_at = occurred_at
        self.depth = 3 if qi == "age_band" else 2
        if qi == "occurred":
            grans = {r["date_granularity"] for r in records if r["occurred"] is not None}
            self.depth = max((len(_OCCURRED_CUTS[g]) for g in grans), default=1)
        self._levels: dict[int, list[Any]] = {0: list(map(itemgetter(qi), records))}

    def __len__(self) -> int:
        return self.depth

    def __getitem__(self, level: int) -> list[Any]:
        column = self._levels.get(level)
        if column is None:
            column = self._compute(level)
            self._levels[level] = column
        return column

    def _compute(self, level: int) -> list[Any]:
        n = len(self.records)
        if level >= self.depth - 1:
            return [None] * n
        if self.qi == "age_band":
            wide: dict[Any, Any] = {}
            out_bands: list[Any] = []
            for v in self[0]:
                w = wide.get(v, _UNSET)
                if w is _UNSET:
                    w = wide[v] = wide_age_band(v)
                out_bands.append(w)
            return out_bands
        # occurred, level >= 1 (other attributes have only "as is" and "withheld")
        out: list[Any] = []
        for r, t in zip(self.records, self.occurred_at, strict=True):
            if r["occurred"] is None:
                out.append(None)
                continue
            ladder = _OCCURRED_CUTS[r["date_granularity"]]
            cut = ladder[min(level, len(ladder) - 1)]
            # The event time's isoformat() (the caller may pass it already formatted).
            iso = t if isinstance(t, str) else t.isoformat()
            out.append(None if cut is None else iso[:cut])
        return out


_UNSET = object()


# The ladder of an event time above its policy granularity, as isoformat() prefixes
# (month = 7 characters, year = 4); level 0 is the record's own value and is not recomputed.
_OCCURRED_CUTS: dict[str, tuple[int | None, ...]] = {
    "minute": (0, 7, 4, None),
    "hour": (0, 7, 4, None),
    "day": (0, 7, 4, None),
    "week": (0, 4, None),
    "month": (0, 4, None),
    "year": (0, None),
}


def enforce_k(
    records: Sequence[dict[str, Any]],
    occurred_at: Sequence[datetime | str],
    rule: AudienceRule,
    *,
    target: float = DATAFLY_TARGET,
) -> KResult:
    """Make `records` (FlowRecord dicts of one audience and window) k-anonymous over the rule's
    quasi-identifiers; generalised values are written into the dicts. Returns which records to
    keep and which are suppressed. `occurred_at` holds each record's event time, as a UTC
    datetime or its isoformat() text."""
    n = len(records)
    qis = rule.quasi_identifiers
    k = rule.k
    if n == 0:
        return KResult(kept=[], suppressed=[])
    if not qis or (k <= 1 and rule.l_diversity is None):
        return KResult(kept=list(range(n)), suppressed=[])
    ladders = {q: _Ladder(q, records, occurred_at) for q in qis}
    levels = dict.fromkeys(qis, 0)
    allowed_small = int(n * min(target, rule.max_suppression))
    distinct: dict[tuple[str, int], int] = {}

    def keys() -> list[tuple[Any, ...]]:
        columns = [ladders[q][levels[q]] for q in qis]
        return list(zip(*columns, strict=True))

    def n_distinct(q: str) -> int:
        at = (q, levels[q])
        count = distinct.get(at)
        if count is None:
            count = distinct[at] = len(set(ladders[q][levels[q]]))
        return count

    current = keys()
    counts = Counter(current)
    while True:
        small = sum(c for c in counts.values() if c < k)
        if small <= allowed_small:
            break
        candidates = [q for q in qis if levels[q] + 1 < len(ladders[q])]
        if not candidates:
            break
        # Datafly: generalise the attribute with the most distinct values first.
        best = max(candidates, key=lambda q: (n_distinct(q), q))
        levels[best] += 1
        current = keys()
        counts = Counter(current)
    keep_mask = [counts[key] >= k for key in current]
    l_suppressed = 0
    if rule.l_diversity is not None:
        attr, ell = rule.l_diversity.attribute, rule.l_diversity.l
        values: dict[tuple[Any, ...], set[Any]] = defaultdict(set)
        for i, key in enumerate(current):
            if keep_mask[i]:
                values[key].add(records[i].get(attr))
        for i, key in enumerate(current):
            if keep_mask[i] and len(values[key]) < ell:
                keep_mask[i] = False
                l_suppressed += 1
    labels: dict[Any, str | None] = {}
    for q in qis:
        level = levels[q]
        if level == 0:
            continue
        column = ladders[q][level]
        is_occurred = q == "occurred"
        for record, value in zip(records, column, strict=True):
            if record[q] != value:
                record[q] = value
                generalised = record["generalised"]
                if q not in generalised:
                    generalised.append(q)
                if is_occurred:
                    label = labels.get(value, _UNSET)
                    if label is _UNSET:
                        label = labels[value] = _granularity_label(value)
                    record["date_granularity"] = label
    kept = list(compress(range(n), keep_mask))
    if len(kept) == n:
        suppressed: list[int] = []
    else:
        suppressed = [i for i in range(n) if not keep_mask[i]]
    return KResult(kept=kept, suppressed=suppressed, levels=levels, l_suppressed=l_suppressed)


def _granularity_label(text: str | None) -> str | None:
    if text is None:
        return None
    g = granularity_of(text)
    return g.value if g is not None else None


def equivalence_classes(
    records: Sequence[dict[str, Any]], qis: Sequence[str]
) -> Counter[tuple[Any, ...]]:
    getter: Callable[[dict[str, Any]], tuple[Any, ...]] = lambda r: tuple(r.get(q) for q in qis)  # noqa: E731
    return Counter(getter(r) for r in records)
