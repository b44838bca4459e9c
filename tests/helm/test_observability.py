"""Metrics are scraped and logs are JSON in both charts, and the chart matches the code it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deid.kafka_security import kafka_security_config
from hub.serve.options import parse_options
from tests.helm.charts import HUB_CHART, Manifests, env_of, render

MULTIPROCESS = ("web", "worker")  # granian's worker processes, Celery's prefork pool


def _volume_of(pod_spec: dict[str, Any], container: dict[str, Any], path: str) -> dict[str, Any]:
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == path]
    (volume,) = [v for v in pod_spec["volumes"] if v["name"] == mount["name"]]
    return volume


def test_web_runs_the_launcher_with_the_server_values(hub: Manifests) -> None:
    (web,) = hub.pod("web").containers
    server = hub.values["web"]["server"]
    # The launcher's own parser reads what the chart passes: the chart and the code agree.
    options = parse_options(web["command"][3:], env_of(web))
    assert web["command"][:3] == ["python", "-m", "hub.serve"]
    assert (options.host, options.port) == ("0.0.0.0", 8000)  # noqa: S104 - the pod's port
    assert options.workers == server["workers"]
    assert options.blocking_threads == server["blockingThreads"]
    assert options.runtime_threads == server["runtimeThreads"]
    assert options.backlog == server["backlog"]
    assert options.backpressure == server.get("backpressure")
    assert options.keepalive_requests == server["keepaliveRequests"] == 0
    assert options.workers_kill_timeout == server["workersKillTimeout"]
    assert options.statement_timeout == server["statementTimeout"] == 30
    assert options.workers_lifetime == server.get("workersLifetime")
    assert options.access_log is server["accessLog"]
    # A worker that dies is replaced, as gunicorn's master did.
    assert options.respawn_failed_workers is True


def test_the_web_stops_inside_its_grace_period(hub: Manifests) -> None:
    pod = hub.pod("web")
    (web,) = pod.containers
    options = parse_options(web["command"][3:], env_of(web))
    pre_stop = web["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    # The kubelet counts the grace period from the preStop hook; SIGTERM comes after it,
    # then granian gives each worker the kill timeout before SIGKILL.
    assert (
        int(pre_stop[1]) + options.workers_kill_timeout < pod.spec["terminationGracePeriodSeconds"]
    )


def _web_rendered_with(helm: str, tmp_path: Path, values: str) -> dict[str, Any]:
    """The web container the chart renders with ``values`` (YAML) over its own."""
    extra = tmp_path / "extra.yaml"
    extra.write_text(values, encoding="utf-8")
    (web,) = render(helm, HUB_CHART, [extra]).pod("web").containers
    return web


def test_the_server_values_reach_the_launcher(helm: str, tmp_path: Path) -> None:
    web = _web_rendered_with(
        helm,
        tmp_path,
        "web:\n  server:\n    workers: 6\n    backpressure: 32\n    workersLifetime: 3600\n"
        "    accessLog: false\n    keepaliveRequests: 100\n    statementTimeout: 0\n",
    )
    options = parse_options(web["command"][3:], env_of(web))
    assert (options.workers, options.backpressure) == (6, 32)
    assert options.workers_lifetime == 3600
    assert options.access_log is False
    assert options.keepalive_requests == 100
    assert options.statement_timeout == 0  # none: behind PgBouncer, set on the role


def test_numbers_of_a_million_or_more_reach_the_processes_as_whole_numbers(
    helm: str, tmp_path: Path
) -> None:
    # Helm reads YAML numbers as floats; toString alone would write 1000000 as "1e+06".
    web = _web_rendered_with(
        helm,
        tmp_path,
        "web:\n  server:\n    workersLifetime: 1000000\n    keepaliveRequests: 2500000\n"
        "django:\n  extraEnv:\n    HUB_SOME_LIMIT: 5000000\n    HUB_SOME_RATIO: 0.25\n",
    )
    env = env_of(web)
    options = parse_options(web["command"][3:], env)
    assert (options.workers_lifetime, options.keepalive_requests) == (1_000_000, 2_500_000)
    assert (env["HUB_SOME_LIMIT"], env["HUB_SOME_RATIO"]) == ("5000000", "0.25")


def test_forking_processes_share_a_writable_multiprocess_directory(hub: Manifests) -> None:
    for component in MULTIPROCESS:
        pod = hub.pod(component)
        (container,) = pod.containers
        directory = env_of(container)["PROMETHEUS_MULTIPROC_DIR"]
        # The root filesystem is read-only: the directory must be a volume of its own.
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert "emptyDir" in _volume_of(pod.spec, container, directory), component


def test_every_hub_metrics_port_is_the_one_its_service_scrapes(hub: Manifests) -> None:
    port = hub.values["metrics"]["port"]
    for component in ("web", "worker", "consumer", "coordinator"):
        (container,) = hub.pod(component).containers
        assert env_of(container)["METRICS_PORT"] == str(port), component
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == port, component
        service = hub.named("Service", f"-{component}-metrics")
        annotations = service["metadata"].get("annotations", {})
        if hub.values["metrics"]["serviceAnnotations"]:
            assert annotations["prometheus.io/scrape"] == "true"
            assert annotations["prometheus.io/port"] == str(port)
            assert annotations["prometheus.io/path"] == "/metrics"
        assert service["metadata"]["labels"]["twinhub.io/metrics"] == "true"


def test_the_service_monitor_selects_every_metrics_service(hub_production: Manifests) -> None:
    (monitor,) = hub_production.of_kind("ServiceMonitor")
    wanted = monitor["spec"]["selector"]["matchLabels"]
    selected = {
        s["metadata"]["name"].rsplit("-", 2)[-2]
        for s in hub_production.of_kind("Service")
        if all(s["metadata"]["labels"].get(k) == v for k, v in wanted.items())
    }
    assert selected == {"web", "worker", "consumer", "coordinator"}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]


def test_prometheus_may_reach_the_metrics_port_through_the_network_policy(
    hub_production: Manifests,
) -> None:
    port = hub_production.values["metrics"]["port"]
    for component in ("web", "worker", "consumer", "coordinator"):
        labels = hub_production.pod(component).labels
        admitted = [
            p.get("port")
            for policy in hub_production.policies_for(labels)
            for rule in policy["spec"].get("ingress", [])
            for p in rule.get("ports", [])
        ]
        assert port in admitted or "metrics" in admitted, component


def test_every_process_logs_json_lines(any_chart: Manifests) -> None:
    for pod in any_chart.pods():
        for container in pod.containers:
            assert env_of(container)["LOG_FORMAT"] == "json", (pod.name, container["name"])


def test_the_deid_worker_reads_its_metrics_port_from_the_environment(
    site: Manifests, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deid.worker import metrics_port_from_env

    deid = site.pod("site").container("deid-worker")
    env = env_of(deid)
    ports = {p["name"]: p["containerPort"] for p in deid["ports"]}
    # The chart passes no --metrics-port: the worker must take METRICS_PORT itself.
    assert "--metrics-port" not in deid["command"]
    assert env["METRICS_PORT"] == str(ports["deid-metrics"])
    monkeypatch.setenv("METRICS_PORT", env["METRICS_PORT"])
    assert metrics_port_from_env() == ports["deid-metrics"]


def test_site_metrics_services_carry_each_containers_port(site: Manifests) -> None:
    if not site.values["metrics"]["serviceAnnotations"]:
        return
    pod = site.pod("site")
    ports = {p["name"]: p["containerPort"] for c in pod.containers for p in c["ports"]}
    for service in site.of_kind("Service"):
        if service["metadata"].get("labels", {}).get("twinhub.io/metrics") != "true":
            continue
        target = service["spec"]["ports"][0]["targetPort"]
        annotation = service["metadata"]["annotations"]["prometheus.io/port"]
        assert annotation == str(ports[target]), service["metadata"]["name"]


def test_a_kafka_client_certificate_reaches_only_the_processes_that_talk_to_kafka(
    helm: str, tmp_path: Path
) -> None:
    extra = tmp_path / "mtls.yaml"
    extra.write_text(
        "kafka:\n"
        "  securityProtocol: SSL\n"
        "  caCert: {secretName: twinhub-kafka-ca, key: ca.crt}\n"
        "secretFiles:\n"
        "  KAFKA_SSL_CERTIFICATE: {secretName: twinhub-kafka-client, key: tls.crt}\n"
        "  KAFKA_SSL_KEY: {secretName: twinhub-kafka-client, key: tls.key}\n",
        encoding="utf-8",
    )
    manifests = render(helm, HUB_CHART, [extra])
    for component in ("web", "worker", "consumer", "coordinator"):
        (container,) = manifests.pod(component).containers
        env = env_of(container)
        config = kafka_security_config(env)
        assert config["security.protocol"] == "SSL", component
        assert config["ssl.key.location"] == env["KAFKA_SSL_KEY_FILE"], component
        assert config["ssl.certificate.location"] == env["KAFKA_SSL_CERTIFICATE_FILE"]
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        key_dir = str(Path(env["KAFKA_SSL_KEY_FILE"]).parent)
        assert mounts[key_dir]["readOnly"] is True, component
    # Beat and the migrations never talk to Kafka: no client key there.
    for component in ("beat", "migrations"):
        (container,) = manifests.pod(component).containers
        assert "KAFKA_SSL_KEY_FILE" not in env_of(container), component
