"""Benchmarking: KPIs per hospital per day, week and month, peer comparison, CSV export.

``kpis`` is pure pandas; the Django layer stores and serves the results.
"""
