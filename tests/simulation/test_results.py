"""Summaries: 95% intervals, and combining replications computed elsewhere (Celery)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from simulation import ReplicationResult, run_replication, summarise
from simulation.results import confidence_interval
from tests.simulation.conftest import hospital


def test_confidence_interval_is_the_t_interval() -> None:
    x = [1.0, 2.0, 4.0, 7.0]
    mean, sd, lo, hi = confidence_interval(x)
    half = stats.t.ppf(0.975, 3) * np.std(x, ddof=1) / 2
    assert mean == pytest.approx(3.5)
    assert sd == pytest.approx(np.std(x, ddof=1))
    assert (lo, hi) == pytest.approx((3.5 - half, 3.5 + half))


def test_confidence_interval_ignores_missing_replications() -> None:
    mean, _sd, lo, hi = confidence_interval([1.0, math.nan, 3.0])
    assert mean == 2.0
    assert lo < 2.0 < hi
    assert math.isnan(confidence_interval([5.0])[2])


def test_replications_combined_from_json_equal_the_local_summary() -> None:
    # The hub runs one replication per Celery task and returns its JSON form.
    sc = hospital(days=5, warmup_days=1)
    runs = [run_replication(sc, i, seed=4) for i in range(3)]
    wire = [json.loads(json.dumps(r.to_dict(), allow_nan=False)) for r in reversed(runs)]
    remote = summarise(wire)
    local = summarise(runs)
    pd.testing.assert_frame_equal(remote.table, local.table)
    assert remote.wait_hist == local.wait_hist
    pd.testing.assert_frame_equal(remote.bands["ward_a"], local.bands["ward_a"])
    assert json.dumps(local.to_dict(), allow_nan=False)


def test_results_report_means_with_intervals_that_contain_them() -> None:
    sc = hospital(days=5, warmup_days=1)
    res = summarise([run_replication(sc, i, seed=8) for i in range(4)])
    lo, hi = res.ci("ed.los_mean_h")
    assert lo <= res.mean("ed.los_mean_h") <= hi
    assert 0 < res.mean("ed.within_4h") <= 1
    assert res.table.loc["ed.los_mean_h", "n"] == 4


def test_summarise_refuses_an_empty_list() -> None:
    with pytest.raises(ValueError, match="nothing"):
        summarise([])


def test_replication_result_round_trips_through_its_dict() -> None:
    r = run_replication(hospital(days=3, warmup_days=1), 0, seed=1)
    back = ReplicationResult.from_dict(r.to_dict())
    assert back.series == r.series
    assert back.audit == r.audit
    for k, v in r.metrics.items():
        assert (math.isnan(v) and math.isnan(back.metrics[k])) or back.metrics[k] == v


def test_results_json_can_carry_the_occupancy_bands() -> None:
    sc = hospital(days=3, warmup_days=1)
    res = summarise([run_replication(sc, i, seed=2) for i in range(2)])
    data = json.loads(json.dumps(res.to_dict(bands=True), allow_nan=False))
    band = data["bands"]["icu"]
    assert len(band["t"]) == len(band["mean"]) == 3 * 24
    assert all(lo <= hi for lo, hi in zip(band["p10"], band["p90"], strict=True))
    assert "bands" not in res.to_dict()
