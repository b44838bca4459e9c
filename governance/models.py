"""Governance models arrive with the governance issue."""
