"""Tooling for the local regional demo: the administrator account, seeded data."""
