"""Pictures of results for people who would rather look than read (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

from simulation.results import WAIT_BIN_HOURS, Results

matplotlib.use("Agg")  # files only: this runs on servers without a display

import matplotlib.pyplot as plt  # after choosing the backend


def plot_results(results: Results, path: str | Path, *, max_units: int = 6) -> Path:
    """Occupancy over time with its p10–p90 band across replications, and the wait
    distribution; saved as an image at ``path``."""
    names = [n for n in results.bands if not n.endswith(("clinicians", "boarding"))]
    names = names[:max_units]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 8), constrained_layout=True)
    for name in names:
        band = results.bands[name]
        days = (band["t"] - band["t"].iloc[0]) / 24
        ax1.plot(days, band["mean"], label=name, linewidth=1.2)
        ax1.fill_between(days, band["p10"], band["p90"], alpha=0.2)
    ax1.set_xlabel("days after warm-up")
    ax1.set_ylabel("occupied beds")
    ax1.set_title(
        f"{results.scenario}: occupancy (mean and p10–p90 over {len(results.runs)} replications)"
    )
    if names:
        ax1.legend(loc="upper right", fontsize="small", ncols=2)
    hist = np.asarray(results.wait_hist, dtype=float)
    if hist.sum() > 0:
        edges = np.arange(hist.size) * WAIT_BIN_HOURS
        ax2.bar(edges, hist / hist.sum(), width=WAIT_BIN_HOURS, align="edge")
    ax2.set_xlabel("hours (last bar: this long or longer)")
    ax2.set_ylabel("share of patients")
    ax2.set_title(f"Distribution of the {results.wait_label or 'wait'}")
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
