"""Command line: ``python -m simulation run|whatif|staffing|backtest|synth-arrivals|scenarios``."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from simulation.backtest import backtest, read_history, synthetic_arrivals
from simulation.params import RegionalScenario
from simulation.runner import run_scenario
from simulation.scenario import AnyScenario, ScenarioError, bundled_scenarios, load_scenario
from simulation.whatif import smallest_staffing, whatif


def _parse_change(text: str) -> dict[str, Any]:
    """``{"or_rooms": 1}`` (JSON) or ``key=value`` with dotted keys for nested changes:
    ``staffed_beds.ward_b=-10``; several ``key=value`` joined by commas form one variant."""
    text = text.strip()
    if text.startswith("{"):
        data = json.loads(text)
        if not isinstance(data, dict):
            raise argparse.ArgumentTypeError("a change must be a JSON object")
        return data
    out: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected key=value, got {part!r}")
        number: Any = float(value)
        if number.is_integer() and "." not in value:
            number = int(number)
        head, _, sub = key.strip().partition(".")
        if sub:
            out.setdefault(head, {})[sub] = number
        else:
            out[head] = number
    return out


def _fmt(v: float) -> str:
    return "—" if math.isnan(v) else f"{v:.4g}"


def _print_table(df: pd.DataFrame) -> None:
    with pd.option_context("display.max_rows", None, "display.width", 160):
        print(df.to_string(index=False, float_format=lambda v: _fmt(float(v))))


def _json(obj: Any) -> str:
    def default(o: Any) -> Any:
        if hasattr(o, "isoformat"):
            return o.isoformat()
        if hasattr(o, "item"):
            return o.item()
        raise TypeError(type(o).__name__)

    return json.dumps(obj, indent=2, default=default, allow_nan=False)


def _scenario(args: argparse.Namespace) -> AnyScenario:
    sc = load_scenario(args.scenario)
    if args.days is None:
        return sc
    run = replace(sc.run, days=args.days)
    if isinstance(sc, RegionalScenario):
        hospitals = tuple(replace(h, scenario=replace(h.scenario, run=run)) for h in sc.hospitals)
        return replace(sc, run=run, hospitals=hospitals)
    return replace(sc, run=run)


def cmd_run(args: argparse.Namespace) -> int:
    results = run_scenario(_scenario(args), args.replications, args.seed, args.processes)
    if args.plot:
        from simulation.plots import plot_results  # matplotlib only when asked

        plot_results(results, args.plot)
    if args.json:
        print(_json(results.to_dict()))
    else:
        table = results.table.reset_index()
        if args.metrics:
            pattern = re.compile(args.metrics)
            table = table[[pattern.search(str(m)) is not None for m in table["metric"]]]
        print(f"{results.scenario}: {len(results.runs)} replications, seed {args.seed}")
        _print_table(table[["metric", "mean", "ci_low", "ci_high"]])
        if args.plot:
            print(f"plot written to {args.plot}")
    for pool in args.audit or []:
        audit = results.audit(pool)
        # Only the informative range: from where full units become possible to rare.
        p = audit["p_arrival_finds_all_full"]
        audit = audit[(p > 0.0005) & (p < 0.9995)]
        print(f"\noccupancy audit of {pool}: P(an arriving patient finds all n beds full)")
        _print_table(audit[["beds", "p_occupancy", "p_arrival_finds_all_full"]])
    return 0


def cmd_whatif(args: argparse.Namespace) -> int:
    changes = [_parse_change(c) for c in args.change]
    table = whatif(_scenario(args), changes, args.replications, args.seed, processes=args.processes)
    if args.json:
        print(_json(table.to_dict(orient="records")))
    else:
        _print_table(table)
    return 0


def cmd_staffing(args: argparse.Namespace) -> int:
    res = smallest_staffing(
        _scenario(args),
        metric=args.metric,
        threshold=args.threshold,
        lever=args.lever,
        low=args.low,
        high=args.high,
        replications=args.replications,
        seed=args.seed,
        processes=args.processes,
    )
    if args.json:
        print(_json({"level": res.level, "evaluated": res.evaluated.to_dict(orient="records")}))
    else:
        _print_table(res.evaluated)
        print(
            f"smallest {args.lever} with {args.metric} < {args.threshold}: {res.level}"
            if res.level is not None
            else f"no level up to {args.high} meets the target"
        )
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    history = read_history(
        pd.read_csv(args.arrivals), time_column=args.time_column, count_column=args.count_column
    )
    res = backtest(history, args.horizon)
    if args.json:
        print(_json(res.to_dict()))
    else:
        print(f"{len(history)} hours of history; forecasting the last fifth {args.horizon} h ahead")
        _print_table(res.table)
        print("forecast beats both baselines on MAE:", "yes" if res.beats_baselines else "NO")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    df = synthetic_arrivals(args.weeks, args.seed, daily_mean=args.daily_mean)
    if args.out:
        df.to_csv(args.out, index=False)
    else:
        df.to_csv(sys.stdout, index=False)
    return 0


def cmd_scenarios(_args: argparse.Namespace) -> int:
    for name in bundled_scenarios():
        sc = load_scenario(name)
        print(f"{name:20s} {sc.description}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m simulation", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser, reps: int = 30) -> None:
        sp.add_argument("scenario", help="bundled scenario name or path to a TOML file")
        sp.add_argument("--replications", type=int, default=reps)
        sp.add_argument("--seed", type=int, default=1)
        sp.add_argument("--processes", type=int, default=None, help="default: all cores")
        sp.add_argument("--json", action="store_true", help="print JSON")
        sp.add_argument("--days", type=float, help="override the run length (days)")

    run = sub.add_parser("run", help="run replications and print means with 95%% CIs")
    common(run)
    run.add_argument("--plot", type=Path, help="write occupancy and wait plots to this PNG")
    run.add_argument("--metrics", help="regular expression selecting metrics to print")
    run.add_argument(
        "--audit", action="append", metavar="UNIT", help="print the occupancy audit of UNIT"
    )
    run.set_defaults(func=cmd_run)

    wi = sub.add_parser("whatif", help="deltas of changed scenarios against the base")
    common(wi)
    wi.add_argument(
        "--change",
        action="append",
        required=True,
        help="one variant: JSON such as '{\"or_rooms\": 1}' or or_rooms=1,staffed_beds.ward_b=-10",
    )
    wi.set_defaults(func=cmd_whatif)

    st = sub.add_parser("staffing", help="smallest staffing level meeting a target")
    common(st, reps=10)
    st.add_argument("--metric", default="ed.wait_p95_h")
    st.add_argument("--threshold", type=float, default=4.0)
    st.add_argument("--lever", default="ed_clinicians_per_shift")
    st.add_argument("--low", type=int, default=1)
    st.add_argument("--high", type=int, default=30)
    st.set_defaults(func=cmd_staffing)

    bt = sub.add_parser("backtest", help="back-test hourly arrival forecasts against baselines")
    bt.add_argument("--arrivals", required=True, type=Path, help="CSV: a timestamp and a count")
    bt.add_argument("--horizon", type=int, default=1, help="hours ahead")
    bt.add_argument("--time-column")
    bt.add_argument("--count-column")
    bt.add_argument("--json", action="store_true")
    bt.set_defaults(func=cmd_backtest)

    sy = sub.add_parser("synth-arrivals", help="write a synthetic hourly arrivals history")
    sy.add_argument("--weeks", type=int, default=104)
    sy.add_argument("--seed", type=int, default=1)
    sy.add_argument("--daily-mean", type=float, default=281.0)
    sy.add_argument("--out", type=Path)
    sy.set_defaults(func=cmd_synth)

    sc = sub.add_parser("scenarios", help="list bundled scenarios")
    sc.set_defaults(func=cmd_scenarios)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ScenarioError, ValueError, KeyError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
