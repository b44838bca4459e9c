from django.apps import AppConfig


class BenchmarksConfig(AppConfig):
    """KPIs per hospital per day, week and month; peer comparison; CSV export."""

    name = "hub.benchmarks"
    label = "benchmarks"
    verbose_name = "Benchmarking"
