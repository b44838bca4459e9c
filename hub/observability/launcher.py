"""Metrics in the web launcher's own process (``python -m hub.serve``), which handles no request.

granian forks its workers; each writes its samples to ``PROMETHEUS_MULTIPROC_DIR`` and the
launcher serves the merged registry on ``METRICS_PORT``, as gunicorn's master did. A separate
port rather than ``/metrics`` on 8000: the ingress never routes it, Django's HTTPS redirect and
host checks do not apply to Prometheus, and a worker busy with slow requests does not make the
scrape time out. granian has no hook for a worker's exit, so a reaper thread looks for the
live-gauge files of processes that no longer exist and marks each dead once (its live gauges
stop counting; counters and histograms stay summed).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import multiprocess

from hub.observability.exposition import (
    clear_multiprocess_dir,
    metrics_port,
    multiprocess_dir,
    serve_metrics,
)

log = logging.getLogger("hub.observability.launcher")

# prometheus_client names a live gauge's file gauge_<mode>_<pid>.db, the mode being livesum,
# liveall, livemin, livemax or livemostrecent; only those are removed by mark_process_dead.
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")
REAP_INTERVAL_SECONDS = 5.0


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` exists (a zombie counts as alive until its parent reaps it; granian
    joins a dead worker at once)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_pids(file_names: Iterable[str], alive: Callable[[int], bool]) -> set[int]:
    """The pids of live-gauge files whose process is gone."""
    pids = {int(m.group(1)) for name in file_names if (m := _LIVE_GAUGE_FILE.match(name))}
    return {pid for pid in pids if not alive(pid)}


def reap_dead_workers(directory: Path, alive: Callable[[int], bool] = pid_alive) -> set[int]:
    """Mark every dead process with live-gauge files dead; its files go, so once each."""
    dead = dead_pids((p.name for p in directory.glob("gauge_live*.db")), alive)
    for pid in sorted(dead):
        multiprocess.mark_process_dead(pid, str(directory))
        log.info("worker %d gone: its live gauges no longer count", pid)
    return dead


class DeadWorkerReaper(threading.Thread):
    """Runs :func:`reap_dead_workers` every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, directory: Path, interval: float = REAP_INTERVAL_SECONDS) -> None:
        super().__init__(name="dead-worker-reaper", daemon=True)
        self.directory = directory
        self.interval = interval
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                reap_dead_workers(self.directory)
            except OSError:
                # A file removed between the glob and the removal (a second reaper, a
                # restart's clearing): the next round sees the directory as it is.
                log.warning("could not reap dead workers' gauges", exc_info=True)

    def stop(self) -> None:
        self._stopped.set()


class LauncherMetrics:
    """What the launcher does for the workers' metrics, in the order it must happen:
    :meth:`before_workers` (clear the directory, serve the port, start the reaper) before
    granian forks a worker; :meth:`after_workers` once they are stopped."""

    def __init__(self) -> None:
        self.reaper: DeadWorkerReaper | None = None
        self.server: WSGIServer | None = None

    def before_workers(self) -> None:
        clear_multiprocess_dir()
        directory = multiprocess_dir()
        port = metrics_port()
        if port is not None and directory is None:
            # The launcher handles no request: without the shared directory it would serve
            # nothing of the workers'. Say so rather than serve an empty page.
            log.warning("METRICS_PORT without PROMETHEUS_MULTIPROC_DIR: web metrics not served")
        elif port is not None:
            server = serve_metrics(port)
            self.server = server
            # Workers are forked from this process: without this each would hold the
            # metrics socket open too (a respawned worker included), and keep the port
            # bound after the launcher is gone.
            os.register_at_fork(after_in_child=server.socket.close)
            log.info("metrics on port %d", port)
        if directory is not None:
            self.reaper = DeadWorkerReaper(directory)
            self.reaper.start()

    def after_workers(self) -> None:
        if self.reaper is not None:
            self.reaper.stop()
