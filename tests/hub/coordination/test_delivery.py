"""Side effects after commit: the signed webhook reaches a real HTTP receiver, and a decision's
directive reaches the control topic on the real broker."""

from __future__ import annotations

import base64
import http.server
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer

from hub.coordination import models as m
from hub.coordination import services, tasks
from hub.coordination.delivery import deliver
from hub.coordination.webhooks import HEADER, verify

from .db import World, world

SECRET = "whsec-synthetic-test-secret"


@pytest.fixture
def field_keys(settings: Any) -> None:
    settings.GOVERNANCE_FIELD_KEYS = "1:" + base64.b64encode(os.urandom(32)).decode()
    settings.GOVERNANCE_FIELD_KEY_VERSION = 0


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    got: list[tuple[dict[str, str], bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", got
    server.shutdown()


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.usefixtures("field_keys")
def test_a_new_alert_is_posted_to_the_webhook_with_a_valid_signature(
    receiver: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    url, got = receiver
    w: World = world()
    m.WebhookEndpoint.objects.create(region=w.region, url=url, secret=SECRET)
    services.region_evaluate(region=w.region)
    alert = m.Alert.objects.filter(region=w.region).order_by("-severity").first()
    assert alert is not None
    [delivery] = deliver(alert, 0)
    assert delivery.ok, delivery.error
    [(headers, body)] = got
    assert verify(SECRET.encode(), body, headers[HEADER.lower()], now=int(time.time()))
    assert json.loads(body)["key"] == alert.key
    stored = m.WebhookEndpoint.objects.get(url=url)
    assert stored.secret == SECRET  # decrypts with the row's own associated data


@pytest.mark.postgres
@pytest.mark.kafka
@pytest.mark.django_db
def test_a_decision_directive_is_published_on_the_control_topic(
    settings: Any, kafka_bootstrap: str, unique_topic: str, django_user_model: Any
) -> None:
    settings.GOVERNANCE_CONTROL_TOPIC = unique_topic
    settings.KAFKA_BOOTSTRAP_SERVERS = kafka_bootstrap
    w: World = world()
    services.region_evaluate(region=w.region)
    user = django_user_model.objects.create_user(username="op-kafka", password=None)
    rec = m.DiversionRecommendation.objects.get(hospital=w.h.hospital)
    decision = services.diversion_accept(recommendation=rec, user=user)
    assert decision.directive_id is not None
    assert tasks.publish_directive(decision.directive_id) is True
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"test-{unique_topic}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([unique_topic])
    try:
        message = None
        deadline = time.monotonic() + 30
        while message is None and time.monotonic() < deadline:
            got = consumer.poll(1.0)
            if got is not None and got.error() is None:
                message = got
    finally:
        consumer.close()
    assert message is not None
    assert message.key() == w.h.hospital.site_code.encode()
    body = json.loads(message.value() or b"{}")
    assert body["record_type"] == "control.diversion"
    assert body["payload"]["ems_traffic"] == "Closed"
    assert body["directive_id"] == decision.directive_id
