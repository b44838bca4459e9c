"""The regional hub chart: the processes, their probes, scaling, hooks and network reach."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

from tests.helm.charts import HUB_CHART, Manifests, env_of, ports_of, render

COMMANDS = {
    "web": ["python", "-m", "hub.serve", "--host", "0.0.0.0", "--port", "8000"],  # noqa: S104
    "worker": ["celery", "-A", "hub", "worker"],
    "coordinator": ["celery", "-A", "hub", "worker"],
    "beat": ["celery", "-A", "hub", "beat"],
    "consumer": ["python", "manage.py", "consume"],
    "migrations": ["python", "manage.py", "migrate", "--no-input"],
}
SCALED = ("web", "worker", "consumer")


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def test_each_process_runs_its_fixed_command(hub: Manifests) -> None:
    for component, command in COMMANDS.items():
        (container,) = hub.pod(component).containers
        assert container["command"] == command, component


def test_web_probes_healthz_for_liveness_and_readyz_for_readiness(hub: Manifests) -> None:
    (web,) = hub.pod("web").containers
    allowed = env_of(web)["DJANGO_ALLOWED_HOSTS"].split(",")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = web[probe]["httpGet"]
        assert get["path"] == path
        assert get["port"] == "http"
        headers = {h["name"]: h["value"] for h in get["httpHeaders"]}
        # The kubelet calls the pod IP, which ALLOWED_HOSTS refuses, over plain HTTP, which
        # SECURE_SSL_REDIRECT would redirect.
        assert headers["Host"] in allowed
        assert headers["X-Forwarded-Proto"] == "https"
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in web["ports"]


def test_beat_is_exactly_one_pod_with_no_autoscaler_or_budget(hub: Manifests) -> None:
    beat = hub.named("Deployment", "-beat")
    assert beat["spec"]["replicas"] == 1
    # Recreate: an upgrade stops the old scheduler before it starts the new one.
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    targets = [h["spec"]["scaleTargetRef"]["name"] for h in hub.of_kind("HorizontalPodAutoscaler")]
    assert beat["metadata"]["name"] not in targets
    labels = hub.pod("beat").labels
    assert not [
        p for p in hub.of_kind("PodDisruptionBudget") if _selects(p["spec"]["selector"], labels)
    ]


def test_web_workers_and_consumer_have_autoscalers_and_disruption_budgets(hub: Manifests) -> None:
    for component in SCALED:
        deployment = hub.named("Deployment", f"-{component}")
        hpa = hub.named("HorizontalPodAutoscaler", f"-{component}")
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": deployment["metadata"]["name"],
        }
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        # With an HPA the Deployment leaves the count alone, or every upgrade would reset it.
        assert "replicas" not in deployment["spec"]
        pdb = hub.named("PodDisruptionBudget", f"-{component}")
        assert _selects(pdb["spec"]["selector"], hub.pod(component).labels)


def test_consumer_never_scales_past_the_regional_topic_partitions(hub: Manifests) -> None:
    hpa = hub.named("HorizontalPodAutoscaler", "-consumer")
    assert hpa["spec"]["maxReplicas"] <= hub.values["kafka"]["regionalTopicPartitions"]


def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook(hub: Manifests) -> None:
    job = hub.named("Job", "-migrate")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    pod = hub.pod("migrations")
    assert pod.spec["restartPolicy"] == "Never"
    # Hooks run before the release's own objects exist: nothing here may depend on them.
    assert not any("configMap" in v for v in pod.spec["volumes"])
    assert pod.spec["serviceAccountName"] == "default"


def test_consumer_egress_reaches_only_kafka_and_postgresql(hub: Manifests) -> None:
    values = hub.values
    dns = {
        (proto, port)
        for port in values["networkPolicy"]["dns"]["ports"]
        for proto in ("UDP", "TCP")
    }
    allowed = {
        "kafka": ({("TCP", p) for p in values["kafka"]["ports"]}, values["kafka"]["networkPeers"]),
        "postgresql": (
            {("TCP", p) for p in values["database"]["ports"]},
            values["database"]["networkPeers"],
        ),
        "dns": (dns, values["networkPolicy"]["dns"]["peers"]),
    }
    reached = set()
    policies = hub.policies_for(hub.pod("consumer").labels)
    for policy in policies:
        if "Egress" not in policy["spec"]["policyTypes"]:
            continue
        for rule in policy["spec"].get("egress", []):
            matches = [
                name
                for name, (ports, peers) in allowed.items()
                if ports_of(rule) == ports and rule.get("to", []) == peers
            ]
            assert matches, f"{policy['metadata']['name']}: egress beyond Kafka/PostgreSQL: {rule}"
            reached.update(matches)
    assert reached == {"kafka", "postgresql", "dns"}


def test_consumer_accepts_nothing_but_the_metrics_scrape(hub: Manifests) -> None:
    port = hub.values["metrics"]["port"]
    for policy in hub.policies_for(hub.pod("consumer").labels):
        for rule in policy["spec"].get("ingress", []):
            assert ports_of(rule) == {("TCP", port)}


def test_the_web_is_reached_through_a_tls_ingress(hub: Manifests) -> None:
    ingress = hub.of_kind("Ingress")[0]
    (tls,) = ingress["spec"]["tls"]
    assert tls["secretName"]
    hosts = [rule["host"] for rule in ingress["spec"]["rules"]]
    assert hosts
    assert set(hosts) <= set(tls["hosts"])
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == hub.named("Service", "-web")["metadata"]["name"]
    web_env = env_of(hub.pod("web").containers[0])
    assert web_env["DJANGO_BEHIND_TLS"] == "true"
    assert set(hosts) <= set(web_env["DJANGO_ALLOWED_HOSTS"].split(","))


def test_each_process_reads_only_the_secrets_it_needs(hub_production: Manifests) -> None:
    def files(component: str) -> set[str]:
        env = env_of(hub_production.pod(component).containers[0])
        return {k.removesuffix("_FILE") for k in env if k.endswith("_FILE")}

    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "GOVERNANCE_SIGNING_KEY"} <= files(
        "web"
    )
    assert files("consumer") == {"DJANGO_SECRET_KEY", "DATABASE_URL", "KAFKA_SASL_PASSWORD"}
    assert files("migrations") == {"DJANGO_SECRET_KEY", "DATABASE_URL"}
    assert "GOVERNANCE_SIGNING_KEY" not in files("beat")


def test_production_talks_tls_to_kafka_and_verifies_postgresql(hub_production: Manifests) -> None:
    for pod in hub_production.pods():
        env = env_of(pod.containers[0])
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", pod.name
        assert env["KAFKA_SSL_CA_LOCATION"].endswith("ca.crt"), pod.name
        assert env["DATABASE_SSLMODE"] == "verify-full", pod.name
        assert env["DATABASE_SSLROOTCERT"].endswith("ca.crt"), pod.name


def test_metrics_ports_are_named_and_scraped(hub: Manifests) -> None:
    for component in SCALED:
        (container,) = hub.pod(component).containers
        assert "metrics" in [p["name"] for p in container["ports"]], component
        service = hub.named("Service", f"-{component}-metrics")
        assert service["spec"]["clusterIP"] == "None"
        assert service["spec"]["ports"][0]["targetPort"] == "metrics"
        scraped_by_annotation = (
            service["metadata"].get("annotations", {}).get("prometheus.io/scrape")
        )
        assert scraped_by_annotation == "true" or hub.of_kind("ServiceMonitor"), component


def test_one_process_of_its_own_takes_the_evaluations(hub: Manifests) -> None:
    # What an evaluation stored is kept by its process for the next (hub/coordination/kept.py):
    # one pod, one process, on the evaluations' queue; the workers leave that queue alone.
    coordinator = hub.named("Deployment", "-coordinator")
    assert coordinator["spec"]["replicas"] == 1
    env = env_of(hub.pod("coordinator").containers[0])
    assert (env["CELERY_WORKER_QUEUES"], env["CELERY_WORKER_CONCURRENCY"]) == (
        settings.COORDINATION_QUEUE,
        "1",
    )
    assert env_of(hub.pod("worker").containers[0])["CELERY_WORKER_QUEUES"] == "celery"
    assert not [h for h in hub.of_kind("HorizontalPodAutoscaler") if "coordinator" in str(h)]


def test_without_the_coordinator_the_workers_take_the_evaluations(
    helm: str, tmp_path: Path
) -> None:
    off = tmp_path / "off.yaml"
    off.write_text("coordinator:\n  enabled: false\n")
    chart = render(helm, HUB_CHART, [off])
    assert not [d for d in chart.of_kind("Deployment") if "coordinator" in d["metadata"]["name"]]
    queues = env_of(chart.pod("worker").containers[0])["CELERY_WORKER_QUEUES"].split(",")
    assert set(queues) == {"celery", settings.COORDINATION_QUEUE}


def test_reads_audit_events_wait_for_the_disk_only_when_asked(
    hub: Manifests, helm: str, tmp_path: Path
) -> None:
    # governance/durability.py: off by default; a sharing agreement may ask for it.
    for process in ("web", "worker", "consumer"):
        assert env_of(hub.pod(process).containers[0])["GOVERNANCE_AUDIT_READS_DURABLE"] == "false"
    values = tmp_path / "durable.yaml"
    values.write_text("django:\n  auditReadsDurable: true\n", encoding="utf-8")
    asked = render(helm, HUB_CHART, [values])
    assert env_of(asked.pod("web").containers[0])["GOVERNANCE_AUDIT_READS_DURABLE"] == "true"
