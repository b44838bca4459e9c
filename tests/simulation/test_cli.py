"""The command line: ``python -m simulation ...``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulation.__main__ import main


def test_run_json_prints_metrics_with_intervals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "mmc_check", "--replications", "2", "--days", "20", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["replications"] == 2
    wait = data["metrics"]["unit.servers.p_wait"]
    assert wait["ci_low"] <= wait["mean"] <= wait["ci_high"]


def test_run_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.png"
    args = ["run", "unit_network", "--replications", "2", "--days", "30", "--plot", str(out)]
    assert main(args) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "unit.amu.occupancy_mean" in capsys.readouterr().out


def test_whatif_accepts_json_and_key_value_changes(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["whatif", "unit_network", "--replications", "2", "--days", "30", "--json"]
    args += ["--change", '{"staffed_beds": {"medicine": -20}}', "--change", "arrivals_scale=1.2"]
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["variant"] for r in rows} == {"staffed_beds medicine -20", "arrivals_scale ×1.2"}


def test_backtest_reports_mae_and_coverage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hist = tmp_path / "history.csv"
    assert main(["synth-arrivals", "--weeks", "60", "--seed", "3", "--out", str(hist)]) == 0
    assert main(["backtest", "--arrivals", str(hist), "--horizon", "4"]) == 0
    out = capsys.readouterr().out
    assert "mean_8_weeks" in out
    assert "last_week" in out
    assert "beats both baselines on MAE: yes" in out


def test_unknown_scenario_exits_with_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "atlantis", "--replications", "1"]) == 2
    assert "no scenario" in capsys.readouterr().err


def test_module_runs_as_a_program_without_a_terminal() -> None:
    # Not a TTY: no progress bar on stderr, plain output on stdout.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulation",
            "run",
            "mmc_check",
            "--replications",
            "1",
            "--days",
            "5",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert "unit.servers.p_wait" in proc.stdout
    assert "rep/s" not in proc.stderr


def test_run_prints_an_occupancy_audit(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run", "unit_network", "--replications", "1", "--days", "60", "--audit", "rehab"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "occupancy audit of rehab" in out
    assert "p_arrival_finds_all_full" in out
