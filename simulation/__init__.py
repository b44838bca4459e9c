"""SimPy patient-flow twins: hospitals, unit networks and regions; what-if runs with
confidence intervals; forecasts from the live census; calibration; OR sequencing.

Plain Python (SimPy, numpy, pandas, scipy, OR-Tools): nothing of the platform's other
packages and no Django, so site agents and the hub's Celery workers can both use it.
See ``docs/simulation.md``.
"""

from simulation.arrivals import ArrivalProfile, replication_seed
from simulation.backtest import BacktestResult, backtest, synthetic_arrivals
from simulation.calibrate import Calibration, calibrate, flow_records, synthetic_flow_records
from simulation.changes import apply_changes
from simulation.distributions import Dist
from simulation.forecast import (
    Census,
    CensusPatient,
    Forecast,
    UnitCensus,
    forecast_from_census,
    steady_census,
)
from simulation.orsequencing import (
    Case,
    Plan,
    SurgeryDay,
    recommend_icu_timing,
    sequence_day,
    solve_cpsat,
)
from simulation.params import RegionalScenario, Scenario
from simulation.regional import (
    DiversionPolicy,
    HospitalStatus,
    NoDiversion,
    ThresholdDiversion,
    compare_policies,
)
from simulation.results import ReplicationResult, Results, occupancy_audit, summarise
from simulation.runner import run_replication, run_scenario
from simulation.scenario import load_scenario, scenario_from_dict, scenario_to_dict
from simulation.whatif import StaffingResult, smallest_staffing, whatif

__all__ = [
    "ArrivalProfile",
    "BacktestResult",
    "Calibration",
    "Case",
    "Census",
    "CensusPatient",
    "Dist",
    "DiversionPolicy",
    "Forecast",
    "HospitalStatus",
    "NoDiversion",
    "Plan",
    "RegionalScenario",
    "ReplicationResult",
    "Results",
    "Scenario",
    "StaffingResult",
    "SurgeryDay",
    "ThresholdDiversion",
    "UnitCensus",
    "apply_changes",
    "backtest",
    "calibrate",
    "compare_policies",
    "flow_records",
    "forecast_from_census",
    "load_scenario",
    "occupancy_audit",
    "recommend_icu_timing",
    "replication_seed",
    "run_replication",
    "run_scenario",
    "scenario_from_dict",
    "scenario_to_dict",
    "sequence_day",
    "smallest_staffing",
    "solve_cpsat",
    "steady_census",
    "summarise",
    "synthetic_arrivals",
    "synthetic_flow_records",
    "whatif",
]
