"""Liveness and readiness of the hub and the services it depends on."""
