"""The governance board's screens: policies, erasure requests, the audit log, retention."""
