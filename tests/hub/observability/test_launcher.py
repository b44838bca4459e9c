"""The web launcher's metrics chores: which workers are gone, and forgetting their live gauges."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hub.observability.launcher import dead_pids, pid_alive, reap_dead_workers


def _exited_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_live_gauge_files_of_gone_processes_are_dead() -> None:
    names = [
        "gauge_livesum_101.db",
        "gauge_liveall_101.db",
        "gauge_livemostrecent_102.db",
        "gauge_all_103.db",  # not a live mode: a dead process's value is kept on purpose
        "counter_104.db",
    ]
    assert dead_pids(names, alive=lambda pid: pid == 102) == {101}


def test_pid_alive_tells_a_running_process_from_an_exited_one() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(_exited_pid())


def test_reaping_removes_a_dead_workers_live_gauges_and_keeps_its_counters(
    tmp_path: Path,
) -> None:
    dead, living = _exited_pid(), os.getpid()
    for name in (
        f"gauge_livesum_{dead}.db",
        f"counter_{dead}.db",
        f"gauge_livesum_{living}.db",
    ):
        (tmp_path / name).write_bytes(b"")
    assert reap_dead_workers(tmp_path) == {dead}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"counter_{dead}.db", f"gauge_livesum_{living}.db"]
    )
    # Once each: the files are gone, so the next round finds nothing to do.
    assert reap_dead_workers(tmp_path) == set()
