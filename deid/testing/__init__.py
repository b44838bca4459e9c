"""Synthetic data for tests, the benchmark and demos. Never real patients."""
