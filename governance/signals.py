"""Signals the hub may listen to (governance never calls the hub directly)."""

from django.dispatch import Signal

# Sent after commit when an erasure has been executed and its directive published.
# kwargs: erasure (ErasureRequest), hospital_id, site_code, directive (dict, as published).
# The hub may mirror it as a site Directive its agent fetches through the site API.
erasure_directive_issued = Signal()

# Sent after commit when a sharing policy is published. kwargs: policy (SharingPolicy).
policy_published = Signal()
