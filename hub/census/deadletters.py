"""Dead letters from the web process (the HTTPS fallback push): best effort, since the caller
also gets every rejection with its reason in the response."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from confluent_kafka import KafkaException, Producer
from django.conf import settings

from hub.census import conf
from hub.census.consumer import dead_letter, producer_config
from hub.census.ingest import Rejection

log = logging.getLogger(__name__)
_lock = threading.Lock()
_producer: Producer | None = None


def _shared_producer() -> Producer:
    global _producer
    with _lock:
        if _producer is None:
            _producer = Producer(producer_config(bootstrap=settings.KAFKA_BOOTSTRAP_SERVERS))
        return _producer


def dead_letter_rejections(rejections: Iterable[Rejection], *, timeout: float = 5.0) -> None:
    try:
        producer = _shared_producer()
        for rejection in rejections:
            dead_letter(producer, conf.deadletter_topic(), rejection)
        if producer.flush(timeout):
            log.warning("dead letters not confirmed within %.0f s", timeout)
    except (KafkaException, BufferError):
        log.exception("could not send dead letters")
