"""The hospital-side chart: the site pod (agent + DE-ID worker) and who reaches the raw topic."""

from __future__ import annotations

import tomllib

from site_agent.config import parse_config
from tests.helm.charts import NAMESPACE, Manifests, env_of, ports_of


def test_the_rendered_site_toml_is_a_valid_agent_config(site: Manifests) -> None:
    cm = site.named("ConfigMap", "-config")
    config = parse_config(tomllib.loads(cm["data"]["site.toml"]), base_env={})
    agent = site.pod("site").container("site-agent")
    assert agent["command"] == [
        "python", "-m", "site_agent", "run", "--config", "/etc/site-agent/site.toml",
    ]  # fmt: skip
    deid = site.pod("site").container("deid-worker")
    assert deid["command"] == ["python", "-m", "deid", "run", "--site", config.site_code]
    # The Service and probes use these ports; the agent must listen on every interface.
    assert (config.mllp.host, config.mllp.port) == ("0.0.0.0", 2575)  # noqa: S104
    assert (config.fhir.host, config.fhir.port) == ("0.0.0.0", 8080)  # noqa: S104
    assert config.kafka.bootstrap_servers == env_of(agent)["KAFKA_BOOTSTRAP_SERVERS"]
    assert config.units


def test_one_pod_holds_the_agent_and_its_deid_worker_on_one_volume(site: Manifests) -> None:
    deployment = site.named("Deployment", "site-agent")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = site.pod("site")
    assert [c["name"] for c in pod.containers] == ["site-agent", "deid-worker"]
    (claim,) = [v for v in pod.spec["volumes"] if "persistentVolumeClaim" in v]
    for c in pod.containers:
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        assert mounts[claim["name"]]["mountPath"] == "/var/lib/site-agent"
        assert not mounts[claim["name"]].get("readOnly", False)
        assert env_of(c)["DEID_KEYSTORE"].startswith("/var/lib/site-agent/")
    pvc = site.named("PersistentVolumeClaim", "-data")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert not site.of_kind("HorizontalPodAutoscaler")


def test_only_the_deid_worker_holds_the_site_signing_key(site: Manifests) -> None:
    pod = site.pod("site")
    agent, deid = env_of(pod.container("site-agent")), env_of(pod.container("deid-worker"))
    assert "DEID_SITE_SIGNING_KEY_FILE" not in agent
    assert "DEID_SITE_SIGNING_KEY_FILE" in deid
    assert "DEID_MASTER_KEY_FILE" in agent
    assert "DEID_MASTER_KEY_FILE" in deid


def test_agent_and_deid_worker_are_separate_kafka_principals(site_production: Manifests) -> None:
    # So the ACLs can keep the agent off regional.deid.v1, the topic that leaves the hospital.
    pod = site_production.pod("site")
    users, volumes = [], []
    for name in ("site-agent", "deid-worker"):
        c = pod.container(name)
        users.append(env_of(c)["KAFKA_SASL_USERNAME"])
        (mount,) = [m for m in c["volumeMounts"] if m["mountPath"].endswith("/kafka-sasl-password")]
        volumes.append(mount["name"])
    assert len(set(users)) == 2
    secrets = {
        v["name"]: v["secret"]["secretName"] for v in pod.spec["volumes"] if v["name"] in volumes
    }
    assert len(set(secrets.values())) == 2


def test_the_site_pod_reaches_only_its_kafka_and_dns(site: Manifests) -> None:
    kafka = site.values["kafka"]
    dns = site.values["networkPolicy"]["dns"]
    allowed = [
        ({("TCP", p) for p in kafka["ports"]}, kafka["networkPeers"]),
        ({(proto, p) for p in dns["ports"] for proto in ("UDP", "TCP")}, dns["peers"]),
    ]
    for policy in site.policies_for(site.pod("site").labels):
        for rule in policy["spec"].get("egress", []):
            assert (ports_of(rule), rule.get("to", [])) in allowed, rule


def test_production_raw_topic_brokers_admit_only_the_site_pod(site_production: Manifests) -> None:
    raw = site_production.values["networkPolicy"]["rawKafka"]
    policy = site_production.named("NetworkPolicy", "-raw-kafka")
    assert policy["metadata"]["namespace"] == raw["namespace"]
    assert policy["spec"]["podSelector"] == raw["podSelector"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    clients, brokers = policy["spec"]["ingress"]
    site_pod = site_production.pod("site").labels
    (own, *others) = clients["from"]
    assert all(site_pod[k] == v for k, v in own["podSelector"]["matchLabels"].items())
    assert own["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": NAMESPACE}
    # Nothing else but the explicitly listed clients (MirrorMaker, whose ACLs exclude site.*).
    assert others == raw["allowedClients"]
    assert ports_of(clients) == {("TCP", p) for p in raw["clientPorts"]}
    assert brokers == {"from": [{"podSelector": raw["podSelector"]}]}


def test_production_site_namespace_denies_by_default(site_production: Manifests) -> None:
    deny = site_production.named("NetworkPolicy", "-namespace-default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_ehr_feeds_reach_the_agent_only_from_the_interface_engine(
    site_production: Manifests,
) -> None:
    values = site_production.values
    rules = [
        rule
        for policy in site_production.policies_for(site_production.pod("site").labels)
        for rule in policy["spec"].get("ingress", [])
        if ("TCP", 2575) in ports_of(rule)
    ]
    assert rules == [
        {
            "from": values["networkPolicy"]["ehrFrom"],
            "ports": [{"protocol": "TCP", "port": 2575}, {"protocol": "TCP", "port": 8080}],
        }
    ]


def test_both_processes_expose_named_metrics_ports(site: Manifests) -> None:
    pod = site.pod("site")
    names = {p["name"]: p["containerPort"] for c in pod.containers for p in c["ports"]}
    assert names["metrics"] != names["deid-metrics"]
    for c, port_name in (("site-agent", "metrics"), ("deid-worker", "deid-metrics")):
        assert env_of(pod.container(c))["METRICS_PORT"] == str(names[port_name])
    services = [s for s in site.of_kind("Service") if s["spec"].get("clusterIP") == "None"]
    assert sorted(s["spec"]["ports"][0]["targetPort"] for s in services) == [
        "deid-metrics",
        "metrics",
    ]
