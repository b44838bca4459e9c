"""Render the Helm charts with the real ``helm`` binary and look things up in the result.

The binary is ``$HELM``, else ``.local/bin/helm`` (where ``scripts/helm`` installs it), else
``helm`` on the PATH. CI installs it; elsewhere the tests skip, saying how to get it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
HUB_CHART = ROOT / "helm" / "regional-twin-hub"
SITE_CHART = ROOT / "helm" / "site-agent"
# `go install` builds Helm without the version stamps of its release binaries, so it assumes
# Kubernetes 1.20 and the charts' kubeVersion (>=1.27) would refuse it; scripts/helm does this too.
KUBE_VERSION = "1.30.0"
NAMESPACE = "twinhub-test"

Manifest = dict[str, Any]
POD_OWNERS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def helm_binary() -> str | None:
    explicit = os.environ.get("HELM")
    if explicit:
        return explicit
    local = ROOT / ".local" / "bin" / "helm"
    if local.exists():
        return str(local)
    return shutil.which("helm")


def run_helm(
    helm: str, chart: Path, values: Sequence[Path] = (), *, command: str = "template"
) -> subprocess.CompletedProcess[str]:
    args = [helm, command]
    if command == "template":
        args += [chart.name, str(chart), "--namespace", NAMESPACE]
    else:
        args += ["--strict", str(chart)]
    args += ["--kube-version", KUBE_VERSION]
    for path in values:
        args += ["-f", str(path)]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def render(helm: str, chart: Path, values: Sequence[Path] = ()) -> Manifests:
    """The manifests `helm template` renders, with the values they were rendered from."""
    result = run_helm(helm, chart, values)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    return Manifests(docs, values=load_values(chart, *values))


def load_values(chart: Path, *extra: Path) -> dict[str, Any]:
    """The chart's values.yaml with each extra file merged over it (maps merge, rest replace)."""

    def merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for key, value in over.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = value
        return out

    values: dict[str, Any] = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8"))
    for path in extra:
        values = merge(values, yaml.safe_load(path.read_text(encoding="utf-8")))
    return values


@dataclass(frozen=True)
class Pod:
    """The pod template of a workload, with the labels its pods carry."""

    kind: str
    name: str
    labels: dict[str, str]
    spec: dict[str, Any]

    @property
    def containers(self) -> list[dict[str, Any]]:
        return [*self.spec.get("initContainers", []), *self.spec["containers"]]

    def container(self, name: str) -> dict[str, Any]:
        return next(c for c in self.containers if c["name"] == name)


class Manifests(list[Manifest]):
    def __init__(self, docs: Sequence[Manifest], *, values: dict[str, Any]) -> None:
        super().__init__(docs)
        self.values = values

    def of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self if m["kind"] == kind]

    def named(self, kind: str, suffix: str) -> Manifest:
        found = [m for m in self.of_kind(kind) if m["metadata"]["name"].endswith(suffix)]
        assert len(found) == 1, f"{kind} *{suffix}: found {len(found)}"
        return found[0]

    def pods(self) -> Iterator[Pod]:
        for m in self:
            if m["kind"] in POD_OWNERS:
                template = m["spec"]["template"]
                yield Pod(
                    m["kind"],
                    m["metadata"]["name"],
                    template["metadata"]["labels"],
                    template["spec"],
                )

    def pod(self, component: str) -> Pod:
        found = [p for p in self.pods() if p.labels.get("app.kubernetes.io/component") == component]
        assert len(found) == 1, f"component {component}: found {len(found)} pods"
        return found[0]

    def policies_for(self, labels: Mapping[str, str]) -> list[Manifest]:
        """NetworkPolicies (in the release's namespace) whose podSelector selects these labels."""
        out = []
        for policy in self.of_kind("NetworkPolicy"):
            if policy["metadata"].get("namespace", NAMESPACE) != NAMESPACE:
                continue
            selector = policy["spec"]["podSelector"]
            assert "matchExpressions" not in selector, "the tests only read matchLabels"
            wanted = selector.get("matchLabels", {})
            if all(labels.get(k) == v for k, v in wanted.items()):
                out.append(policy)
        return out


def env_of(container: Mapping[str, Any]) -> dict[str, str]:
    env = container.get("env", [])
    assert all("value" in e for e in env), "every variable has a literal value (secrets are files)"
    return {e["name"]: e["value"] for e in env}


def ports_of(rule: Mapping[str, Any]) -> set[tuple[str, int]]:
    return {(p.get("protocol", "TCP"), int(p["port"])) for p in rule.get("ports", [])}
