"""One directive poll cycle of the site agent against the real hub (Django's live server on
PostgreSQL): governance executes an erasure, the agent fetches the signed directive with its
enrolment credential, crypto-shreds the patient, confirms, acknowledges.

The control-topic publication (Kafka) is replaced by a recorder here: what is under test is
the site API path; the Kafka path has its own end-to-end test in tests/governance."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from deid import signing
from deid.keystore import KeyDestroyed, PatientKeyStore
from governance import control, services
from governance.models import ErasureRequest, ErasureStatus
from hub.registry.models import Directive
from site_agent.directives import HubClient, StoreLedger, poll_once
from site_agent.store import Store
from tests.hub.support import enrolled_site

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.mark.django_db(transaction=True)
def test_one_poll_cycle_against_the_hub_erases_confirms_and_acknowledges(
    live_server: Any, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gov_key = signing.generate_signing_key()
    settings.GOVERNANCE_SIGNING_KEY = signing.private_key_b64(gov_key)
    settings.GOVERNANCE_FIELD_KEYS = "1:" + base64.b64encode(os.urandom(32)).decode()
    settings.GOVERNANCE_FIELD_KEY_VERSION = 0
    published: list[dict[str, Any]] = []
    monkeypatch.setattr(control, "publish", lambda **kw: published.append(kw))

    # The site: an enrolled agent, a key store with two patients.
    hospital, _, credential = enrolled_site()
    keystore = PatientKeyStore(tmp_path / "keystore.sqlite3", os.urandom(32))
    surrogate = keystore.surrogate_for("MRN-ERASE")
    key_id, ciphertext = keystore.encrypt_phi(surrogate, {"mrn": "MRN-ERASE"})
    kept = keystore.surrogate_for("MRN-KEEP")
    kept_key, kept_ct = keystore.encrypt_phi(kept, {"mrn": "MRN-KEEP"})

    # Governance: received -> approved -> executed; the directive is queued for the site.
    board = get_user_model().objects.create_user(f"board-{uuid.uuid4().hex[:8]}")
    erasure = services.erasure_request_create(
        actor=None, hospital_id=hospital.pk, surrogate_id=surrogate, origin="site"
    )
    erasure = services.erasure_request_approve(actor=board, erasure=erasure)
    erasure = services.erasure_request_execute(actor=board, erasure=erasure)
    assert len(published) == 1
    services.erasure_directive_resend(erasure=erasure)  # a resend while pending: one in queue
    assert len(published) == 2
    directive = Directive.objects.get(hospital=hospital, kind=Directive.Kind.ERASURE)
    assert directive.acknowledged_at is None

    # One cycle of the agent's code over HTTP.
    store = Store(tmp_path / "agent.sqlite3")
    hub = HubClient(live_server.url, credential, timeout=10)

    def cycle() -> list[Any]:
        return poll_once(
            site_code=hospital.site_code,
            hub=hub,
            keystore=keystore,
            ledger=StoreLedger(store),
            trusted=[signing.public_key_b64(gov_key)],
        )

    outcomes = cycle()

    assert [(o.directive_id, o.kind, o.result) for o in outcomes] == [
        (directive.pk, "erasure", "done")
    ]
    with pytest.raises(KeyDestroyed):
        keystore.decrypt_phi(surrogate, key_id, ciphertext)
    assert keystore.decrypt_phi(kept, kept_key, kept_ct)["mrn"] == "MRN-KEEP"
    erasure = ErasureRequest.objects.get(pk=erasure.pk)
    assert erasure.status == ErasureStatus.CLOSED
    assert erasure.site_evidence["method"] == "crypto-shredding"
    assert erasure.site_evidence["data_keys_destroyed"] == [key_id]
    assert erasure.site_evidence["surrogate_digest"] == erasure.surrogate_digest
    assert "surrogate_id" not in erasure.site_evidence
    directive.refresh_from_db()
    assert directive.acknowledged_at is not None
    # The hub's copy of the directive no longer names the patient.
    assert surrogate not in str(directive.payload)

    # A second cycle finds nothing to do.
    assert cycle() == []
    assert store.directive_outcome(directive.pk) == "done"
    store.close()
    keystore.close()
