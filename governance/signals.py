"""Signals the hub may listen to (governance never calls the hub directly)."""

from django.dispatch import Signal

# Sent after commit when an erasure has been executed and its directive published.
# kwargs: erasure (ErasureRequest), hospital_id, site_code, directive (dict, as published).
# The hub may mirror it as a site Directive its agent fetches through the site API.
erasure_directive_issued = Signal()

# Sent inside the confirming transaction when the site has confirmed an erasure (the request
# is closed). kwargs: erasure (ErasureRequest), hospital_id, site_code, surrogate_digest.
# The hub scrubs the surrogate from any copy of the directive it queued for the site.
erasure_confirmed = Signal()

# Sent after commit when a sharing policy is published. kwargs: policy (SharingPolicy).
policy_published = Signal()
