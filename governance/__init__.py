"""Governance: roles and object permissions, sharing policies, retention, erasure, audit."""
