"""values.schema.json (and the chart's own checks) refuse values the charts cannot run safely."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helm.charts import HUB_CHART, SITE_CHART, run_helm

# (values file text, words the error must contain). Most are the schema's, which `helm lint`
# and `helm template` both enforce; a few compare two values, which JSON Schema cannot, and are
# the chart's own `fail` checks: `helm template` (and install) stops, `helm lint` only logs them.
TEMPLATE_ONLY = {
    "more consumers than partitions",
    "HPA minimum above maximum",
    "a web kill timeout past the grace period",
}
HUB_BAD = {
    "two schedulers": ("beat:\n  replicas: 2\n", "replicas"),
    "any host": ("django:\n  allowedHosts: ['*']\n", "allowedHosts"),
    "verify-full without a CA": ("database:\n  sslmode: verify-full\n", "caCert"),
    "unknown sslmode": ("database:\n  sslmode: sometimes\n", "sslmode"),
    "SASL without mechanism": ("kafka:\n  securityProtocol: SASL_SSL\n", "mechanism"),
    "SASL without a password file": (
        "kafka:\n  securityProtocol: SASL_SSL\n  sasl: {mechanism: PLAIN, username: hub}\n",
        "KAFKA_SASL_PASSWORD",
    ),
    "unknown security protocol": ("kafka:\n  securityProtocol: TLS\n", "securityProtocol"),
    "ingress without TLS": ("ingress:\n  tls:\n    secretName: ''\n", "secretName"),
    "container without resources": ("worker:\n  resources: null\n", "resources"),
    "memory in the wrong unit": (
        "web:\n  resources:\n    limits: {memory: 1GB}\n",
        "memory",
    ),
    "a secret as a plain setting": (
        "django:\n  extraEnv:\n    DJANGO_SECRET_KEY: hunter2\n",
        "DJANGO_SECRET_KEY",
    ),
    "the database URL as a plain setting": (
        "django:\n  extraEnv:\n    DATABASE_URL: postgres://u:p@db/x\n",
        "DATABASE_URL",
    ),
    "no database secret": ("secretFiles:\n  DATABASE_URL: null\n", "DATABASE_URL"),
    "a secret name that is not a variable": (
        "secretFiles:\n  db-url: {secretName: s, key: k}\n",
        "db-url",
    ),
    "more consumers than partitions": (
        "consumer:\n  autoscaling: {maxReplicas: 40}\nkafka:\n  regionalTopicPartitions: 12\n",
        "partition",
    ),
    "HPA minimum above maximum": ("web:\n  autoscaling: {minReplicas: 9, maxReplicas: 3}\n", "min"),
    "root user": ("securityContext:\n  runAsUser: 0\n", "runAsUser"),
    "a web kill timeout past the grace period": (
        "web:\n  terminationGracePeriodSeconds: 30\n  server: {workersKillTimeout: 25}\n",
        "workersKillTimeout",
    ),
    "the old gunicorn settings": ("web:\n  gunicorn: {workers: 4, timeout: 30}\n", "gunicorn"),
    "a backlog granian would raise": ("web:\n  server: {backlog: 64}\n", "backlog"),
    "a worker lifetime under granian's minimum": (
        "web:\n  server: {workersLifetime: 30}\n",
        "workersLifetime",
    ),
    "a typo": ("web:\n  replcas: 3\n", "replcas"),
}
SITE_BAD = {
    "a site code with a dot": ("site:\n  code: st.marys\n", "code"),
    "a site table in configToml": (
        "agent:\n  configToml: |\n    [agent]\n    forecast = true\n    [kafka.producer]\n"
        '    "sasl.password" = "x"\n',
        "configToml",
    ),
    "the signing key in the agent": (
        "agent:\n  secretFiles: [DEID_MASTER_KEY, DEID_SITE_SIGNING_KEY]\n",
        "secretFiles",
    ),
    "a second replica": ("replicas: 2\n", "replicas"),
    "raw Kafka policy selecting every pod": (
        "networkPolicy:\n  rawKafka: {enabled: true, podSelector: {}}\n",
        "podSelector",
    ),
    "a governance key that is not a key": (
        "deid:\n  governancePublicKeys: [not-a-key]\n",
        "governancePublicKeys",
    ),
    "metrics on the MLLP port": ("metrics:\n  agentPort: 2575\n", "agentPort"),
    "no master key": ("secretFiles:\n  DEID_MASTER_KEY: null\n", "DEID_MASTER_KEY"),
    "SASL without a principal for the DE-ID worker": (
        "kafka:\n  securityProtocol: SASL_SSL\n  sasl:\n    mechanism: SCRAM-SHA-512\n"
        "    agent: {username: a, passwordSecret: {secretName: s, key: password}}\n",
        "deid",
    ),
    "no persistent volume size": (
        "agent:\n  persistence: {size: lots}\n",
        "size",
    ),
}


def _refused(helm: str, chart: Path, tmp_path: Path, text: str, words: str) -> None:
    bad = tmp_path / "bad-values.yaml"
    bad.write_text(text, encoding="utf-8")
    schema_case = not any(HUB_BAD.get(case) == (text, words) for case in TEMPLATE_ONLY)
    for command in ("template", "lint") if schema_case else ("template",):
        result = run_helm(helm, chart, [bad], command=command)
        output = result.stdout + result.stderr
        assert result.returncode != 0, f"helm {command} accepted:\n{text}"
        assert words in output, output


@pytest.mark.parametrize(("text", "words"), HUB_BAD.values(), ids=HUB_BAD.keys())
def test_hub_chart_refuses(helm: str, tmp_path: Path, text: str, words: str) -> None:
    _refused(helm, HUB_CHART, tmp_path, text, words)


@pytest.mark.parametrize(("text", "words"), SITE_BAD.values(), ids=SITE_BAD.keys())
def test_site_chart_refuses(helm: str, tmp_path: Path, text: str, words: str) -> None:
    _refused(helm, SITE_CHART, tmp_path, text, words)


@pytest.mark.parametrize("chart", [HUB_CHART, SITE_CHART], ids=["hub", "site"])
def test_both_value_sets_lint_cleanly(helm: str, chart: Path) -> None:
    for values in ([], [chart / "values-production.yaml"]):
        result = run_helm(helm, chart, values, command="lint")
        assert result.returncode == 0, result.stdout + result.stderr
