"""Fixtures: the helm binary and each chart rendered with its default and production values."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helm.charts import HUB_CHART, SITE_CHART, Manifests, helm_binary, render

VALUE_SETS = {"default": (), "production": ("values-production.yaml",)}


@pytest.fixture(scope="session")
def helm() -> str:
    path = helm_binary()
    if path is None:
        pytest.skip("helm is not installed: `scripts/helm install` puts it in .local/bin")
    return path


def _values(chart: Path, name: str) -> list[Path]:
    return [chart / f for f in VALUE_SETS[name]]


@pytest.fixture(scope="session", params=list(VALUE_SETS))
def hub(request: pytest.FixtureRequest, helm: str) -> Manifests:
    """The hub chart rendered with its default values, then with the production example."""
    return render(helm, HUB_CHART, _values(HUB_CHART, request.param))


@pytest.fixture(scope="session", params=list(VALUE_SETS))
def site(request: pytest.FixtureRequest, helm: str) -> Manifests:
    return render(helm, SITE_CHART, _values(SITE_CHART, request.param))


@pytest.fixture(scope="session")
def hub_production(helm: str) -> Manifests:
    return render(helm, HUB_CHART, _values(HUB_CHART, "production"))


@pytest.fixture(scope="session")
def site_production(helm: str) -> Manifests:
    return render(helm, SITE_CHART, _values(SITE_CHART, "production"))


@pytest.fixture(
    scope="session", params=["hub-default", "hub-production", "site-default", "site-production"]
)
def any_chart(request: pytest.FixtureRequest, helm: str) -> Manifests:
    """Every chart with every value set: for the promises both charts make."""
    which, values = request.param.split("-")
    chart = HUB_CHART if which == "hub" else SITE_CHART
    return render(helm, chart, _values(chart, values))
