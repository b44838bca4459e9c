"""The image and the charts agree: the user id, what the build context holds, what ships.

There is no container engine here, so the Dockerfile is read, not built."""

from __future__ import annotations

import re

from tests.helm.charts import HUB_CHART, ROOT, SITE_CHART, load_values

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
STAGES = re.split(r"(?m)^FROM ", DOCKERFILE)


def test_the_image_runs_as_the_numeric_user_the_charts_expect() -> None:
    runtime = STAGES[-1]
    (user,) = re.findall(r"(?m)^USER (\S+)$", runtime)
    uid, gid = (int(part) for part in user.split(":"))
    for chart in (HUB_CHART, SITE_CHART):
        ids = load_values(chart)["securityContext"]
        assert (ids["runAsUser"], ids["runAsGroup"]) == (uid, gid), chart.name
    assert uid != 0


def test_the_runtime_stage_carries_no_build_secret_and_no_dev_extras() -> None:
    runtime = STAGES[-1]
    assert not re.search(r"(?m)^(ARG|ENV)\b.*(SECRET|PASSWORD|TOKEN)", runtime)
    assert "[dev]" not in DOCKERFILE
    assert "pip install" not in runtime
    # manage.py is where the charts' `python manage.py ...` commands expect it.
    assert "COPY --from=build /src/manage.py /app/manage.py" in runtime
    assert re.search(r"(?m)^WORKDIR /app$", runtime)


def test_the_build_context_is_an_allow_list() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {
        "pyproject.toml", "README.md", "manage.py",
        "hub", "governance", "deid", "site_agent", "simulation",
    }  # fmt: skip
