"""Promises every pod of both charts keeps, with default and production values alike."""

from __future__ import annotations

import re

from tests.helm.charts import Manifests, env_of

SECRETISH_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY$|_KEYS$|^DATABASE_URL$|^REDIS_URL$)")
# A TOML or properties assignment of something secret, a PEM block, a URL with a password.
SECRETISH_TEXT = re.compile(
    r"(password|secret|token|private[_.-]?key|master[_.-]?key|signing[_.-]?key)\W*[=:]"
    r"|-----BEGIN|://[^/\s:@]+:[^/\s@]+@",
    re.IGNORECASE,
)


def test_every_pod_runs_as_non_root_with_a_read_only_root_filesystem(any_chart: Manifests) -> None:
    pods = list(any_chart.pods())
    assert pods
    for pod in pods:
        ctx = pod.spec["securityContext"]
        assert ctx["runAsNonRoot"] is True, pod.name
        assert ctx["runAsUser"] > 0, pod.name
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, pod.name
        for c in pod.containers:
            sc = c["securityContext"]
            where = f"{pod.name}/{c['name']}"
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc.get("privileged", False) is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in sc["capabilities"], where
            assert sc.get("runAsUser", ctx["runAsUser"]) > 0, where


def test_every_container_sets_requests_and_a_memory_limit(any_chart: Manifests) -> None:
    for pod in any_chart.pods():
        for c in pod.containers:
            resources = c["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), f"{pod.name}/{c['name']}"
            assert "memory" in resources["limits"], f"{pod.name}/{c['name']}"


def test_no_pod_gets_a_kubernetes_api_token(any_chart: Manifests) -> None:
    for pod in any_chart.pods():
        assert pod.spec["automountServiceAccountToken"] is False, pod.name


def test_secrets_are_only_ever_mounted_files(any_chart: Manifests) -> None:
    # The chart creates no Secret: it mounts existing ones, never reads or templates a value.
    assert not any_chart.of_kind("Secret")
    for pod in any_chart.pods():
        for c in pod.containers:
            assert "envFrom" not in c, f"{pod.name}/{c['name']}"
            env = env_of(c)
            for name, value in env.items():
                if "PUBLIC" in name or not SECRETISH_NAME.search(name.removesuffix("_FILE")):
                    continue
                where = f"{pod.name}/{c['name']}: {name}"
                assert name.endswith("_FILE"), f"{where} is set as a value"
                assert value.startswith("/var/run/secrets/twinhub/"), f"{where}={value}"
            secret_dirs = {
                m["mountPath"]
                for m in c["volumeMounts"]
                if m["mountPath"].startswith("/var/run/secrets/")
            }
            assert all(
                m.get("readOnly") for m in c["volumeMounts"] if m["mountPath"] in secret_dirs
            )
        for volume in pod.spec["volumes"]:
            if volume["name"].startswith("secret-"):
                assert volume["secret"]["defaultMode"] & 0o007 == 0, f"{volume} is world-readable"


def test_no_secret_value_in_any_config_map(any_chart: Manifests) -> None:
    for cm in any_chart.of_kind("ConfigMap"):
        for key, text in cm.get("data", {}).items():
            match = SECRETISH_TEXT.search(text)
            assert match is None, f"ConfigMap {cm['metadata']['name']}/{key}: {match.group(0)!r}"


def test_every_pod_is_behind_a_default_deny_network_policy(any_chart: Manifests) -> None:
    for pod in any_chart.pods():
        deny = [
            p
            for p in any_chart.policies_for(pod.labels)
            if set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress")
            and not p["spec"].get("egress")
        ]
        assert deny, f"{pod.name}: no default-deny NetworkPolicy selects it"
