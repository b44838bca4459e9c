"""Governance's REST API and the DRF building blocks every hub view uses."""
