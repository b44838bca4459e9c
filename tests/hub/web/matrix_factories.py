"""What the permission matrix (tests/governance/test_permission_matrix.py) needs for the web
app's routes: the workflow step of a sharing request, and a what-if run."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from governance.testing import register_matrix_factory, register_url_kwarg
from hub.coordination import models as m

# /sharing/requests/<pk>/<step>/: any step; the matrix only GETs it (the view is POST-only).
register_url_kwarg("step", lambda obj: "fulfil")


@register_matrix_factory("coordination.ScenarioRun")
def scenario_run(hospital: Any, unit: Any) -> models.Model:
    return m.ScenarioRun.objects.create(
        scenario="community_hospital", replications=2, requested_at=timezone.now()
    )
