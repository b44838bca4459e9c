"""The image and the charts agree: the user id, what the build context holds, what ships.

There is no container daemon here, so the Dockerfile is read, not built (docs/deploy.md says
how its stages were checked by hand)."""

from __future__ import annotations

import json
import re

from tests.helm.charts import HUB_CHART, ROOT, SITE_CHART, Manifests, load_values

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
        "native/deid_core",  # the DE-ID worker's Rust core, built in its own stage
    }  # fmt: skip
    # The crate's sources go in, never a local build of it.
    assert "native/deid_core/target" in lines


def _stage(name: str) -> str:
    (stage,) = [s for s in STAGES if re.match(rf"\S+ AS {name}\s*$", s.splitlines()[0])]
    return stage


def _vendored_by_bootstrap() -> set[str]:
    """The files scripts/bootstrap copies out of node_modules for a checkout."""
    bootstrap = (ROOT / "scripts" / "bootstrap").read_text(encoding="utf-8")
    return set(re.findall(r'node_modules/([^\s"\\]+)', bootstrap))


def test_a_node_stage_installs_the_web_assets_from_the_lock_file() -> None:
    assets = _stage("web-assets")
    assert re.search(r"(?m)^ARG NODE_IMAGE=node:20-slim$", DOCKERFILE)
    assert assets.startswith("${NODE_IMAGE} AS web-assets")
    assert "COPY hub/web/frontend/package.json hub/web/frontend/package-lock.json ./" in assets
    # npm ci installs exactly the lock file's versions (npm install could move them).
    assert re.search(r"\bnpm ci\b", assets)
    assert "npm install" not in assets
    copied = set(re.findall(r'node_modules/([^\s"\\]+)', assets))
    assert copied == _vendored_by_bootstrap()
    assert {"htmx.org/dist/htmx.min.js", "chart.js/dist/chart.umd.min.js.map"} <= copied


def test_the_assets_are_in_place_before_collectstatic() -> None:
    build = _stage("build")
    copy = build.index("COPY --from=web-assets /assets/vendor ./hub/web/static/web/vendor")
    assert copy < build.index("collectstatic")


def test_the_runtime_stage_holds_no_node_and_no_node_modules() -> None:
    runtime = _stage("runtime")
    assert "web-assets" not in runtime
    assert "npm" not in runtime
    assert "node_modules" not in runtime


def test_a_checkouts_installed_assets_stay_out_of_the_build_context() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "**/node_modules" in ignored
    assert "hub/web/static/web/vendor" in ignored


def test_the_image_starts_the_web_as_the_chart_does(hub: Manifests) -> None:
    (cmd,) = re.findall(r"(?m)^CMD (.+)$", STAGES[-1])
    (web,) = hub.pod("web").containers
    assert json.loads(cmd) == web["command"]
