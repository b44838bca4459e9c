import socket

import pytest
from django.test import Client

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.redis]


def closed_port() -> int:
    """A loopback port nothing listens on: to the client, a stopped server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.django_db(transaction=True)
def test_healthz_answers_without_dependencies(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_readyz_is_200_when_every_dependency_is_up(client: Client) -> None:
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["down"] == []
    assert set(body["checks"]) == {"postgres", "redis", "kafka"}


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_naming_kafka_when_the_broker_is_down(client: Client, settings) -> None:
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{closed_port()}"
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["down"] == ["kafka"]
    assert body["checks"]["postgres"]["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_naming_redis_when_redis_is_down(client: Client, settings) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["down"] == ["redis"]


@pytest.mark.django_db(transaction=True)
def test_readyz_rejects_other_methods(client: Client) -> None:
    assert client.post("/readyz").status_code == 405
