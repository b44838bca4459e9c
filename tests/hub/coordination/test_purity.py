"""The rules stay pure: the modules that decide import no Django, no ORM, no network."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hub.benchmarks
import hub.coordination

PURE = {
    hub.coordination: [
        "alerts_rules",
        "arrays",
        "config",
        "diversion",
        "explain",
        "gcpause",
        "matching",
        "region",
        "rules",
        "state",
        "surge",
        "webhooks",
    ],
    hub.benchmarks: ["kpis"],
}
FORBIDDEN = ("django", "rest_framework", "celery", "confluent_kafka", "requests", "httpx")
PURE_PACKAGES = {p.__name__ for p in PURE}
PURE_MODULES = {f"{p.__name__}.{n}" for p, names in PURE.items() for n in names}


def _cases() -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for package, names in PURE.items():
        root = Path(package.__file__).parent  # type: ignore[arg-type]
        out.extend((f"{package.__name__}.{n}", root / f"{n}.py") for n in names)
    return out


@pytest.mark.parametrize(("module", "path"), _cases())
def test_pure_module_imports_no_framework(module: str, path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module in PURE_PACKAGES:  # from hub.coordination import rules
                imported.extend(f"{node.module}.{a.name}" for a in node.names)
            else:
                imported.append(node.module)
    for name in imported:
        assert not name.startswith(FORBIDDEN), f"{module} imports {name}"
        if name.split(".")[0] == "hub":
            # A pure module may import only the other pure modules (not models, services).
            assert name in PURE_MODULES, f"{module} imports {name}"
