"""Directives from the hub, at the site: the logic with a fake hub (the HTTP boundary), a real
key store and the agent's real SQLite store. The run against the real hub is in
test_directives_hub.py."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deid import signing
from deid.keystore import KeyDestroyed, PatientKeyStore
from site_agent.config import parse_config
from site_agent.directives import (
    ERASURE_SIGNING_DOMAIN,
    DirectivePoller,
    DirectiveRefused,
    HubClient,
    HubRequestFailed,
    HubUnavailable,
    StoreLedger,
    next_delay,
    poll_once,
    verify_erasure,
)
from site_agent.store import Store

SITE = "SITE1"


def sign(body: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """Governance's signing rule (governance/control.py), for tests without Django."""
    text = json.dumps(dict(body), separators=(",", ":"), sort_keys=True).encode()
    return {
        **body,
        "signature": {
            "algorithm": "Ed25519",
            "key_id": signing.key_id_for(key),
            "value": base64.b64encode(key.sign(ERASURE_SIGNING_DOMAIN + text)).decode(),
        },
    }


def erasure_body(surrogate: str, *, site: str = SITE, erasure_id: str = "e-1") -> dict[str, Any]:
    return {
        "record_type": "control.erasure",
        "schema_version": 1,
        "directive_id": "d-" + erasure_id,
        "erasure_id": erasure_id,
        "site_codes": [site],
        "surrogate_id": surrogate,
        "due_at": "2026-12-24T00:00:00+00:00",
        "confirm": f"/api/v1/governance/site/erasure-requests/{erasure_id}/confirm/",
    }


class FakeHub:
    """The site API: a queue of directives, the acks and confirmations it received."""

    def __init__(self, *directives: dict[str, Any]) -> None:
        self.queue = list(directives)
        self.acks: list[int] = []
        self.confirms: list[tuple[str, dict[str, Any]]] = []
        self.ack_removes = True
        self.confirm_error: Exception | None = None
        self.down = False

    def pending_directives(self) -> list[dict[str, Any]]:
        if self.down:
            raise HubUnavailable("connection refused")
        return list(self.queue)

    def acknowledge(self, directive_id: int) -> None:
        self.acks.append(directive_id)
        if self.ack_removes:
            self.queue = [d for d in self.queue if d["id"] != directive_id]

    def confirm_erasure(self, erasure_id: str, evidence: Mapping[str, Any]) -> None:
        if self.confirm_error is not None:
            raise self.confirm_error
        self.confirms.append((erasure_id, dict(evidence)))


@pytest.fixture
def gov_key() -> Ed25519PrivateKey:
    return signing.generate_signing_key()


@pytest.fixture
def keystore(tmp_path: Path) -> Any:
    ks = PatientKeyStore(tmp_path / "keystore.sqlite3", os.urandom(32))
    yield ks
    ks.close()


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "agent.sqlite3")
    yield s
    s.close()


def patient(keystore: PatientKeyStore, mrn: str = "MRN-1") -> tuple[str, str, str]:
    surrogate = keystore.surrogate_for(mrn)
    key_id, ciphertext = keystore.encrypt_phi(surrogate, {"mrn": mrn, "name": "Ada Example"})
    return surrogate, key_id, ciphertext


def cycle(hub: FakeHub, keystore: Any, store: Store, gov_key: Any, **kw: Any) -> list[Any]:
    trusted = kw.pop("trusted", [signing.public_key_b64(gov_key)])
    return poll_once(
        site_code=SITE, hub=hub, keystore=keystore, ledger=StoreLedger(store), trusted=trusted
    )


def test_signed_erasure_shreds_the_patient_confirms_and_acks(
    keystore: PatientKeyStore, store: Store, gov_key: Ed25519PrivateKey
) -> None:
    surrogate, key_id, ciphertext = patient(keystore)
    other, other_key, other_ct = patient(keystore, "MRN-2")
    hub = FakeHub({"id": 7, "kind": "erasure", "payload": sign(erasure_body(surrogate), gov_key)})

    (outcome,) = cycle(hub, keystore, store, gov_key)

    assert (outcome.result, outcome.acknowledged) == ("done", True)
    with pytest.raises(KeyDestroyed):
        keystore.decrypt_phi(surrogate, key_id, ciphertext)
    with pytest.raises(KeyDestroyed):
        keystore.mrn_for(surrogate)  # the surrogate-to-MRN registry row is gone too
    assert keystore.decrypt_phi(other, other_key, other_ct)["mrn"] == "MRN-2"
    ((erasure_id, evidence),) = hub.confirms
    assert erasure_id == "e-1"
    assert evidence["method"] == "crypto-shredding"
    assert evidence["data_keys_destroyed"] == [key_id]
    assert hub.acks == [7]
    assert store.directive_outcome(7) == "done"
    # The agent's own record of the directive keeps no surrogate.
    rows = store.conn.execute("SELECT payload, detail FROM directives").fetchall()
    assert surrogate not in json.dumps(rows)


def test_a_directive_seen_again_is_acknowledged_again_but_applied_once(
    keystore: PatientKeyStore, store: Store, gov_key: Ed25519PrivateKey
) -> None:
    surrogate, _, _ = patient(keystore)
    hub = FakeHub({"id": 7, "kind": "erasure", "payload": sign(erasure_body(surrogate), gov_key)})
    hub.ack_removes = False  # the ack was lost: the hub lists it again

    first = cycle(hub, keystore, store, gov_key)
    second = cycle(hub, keystore, store, gov_key)

    assert [o.result for o in first + second] == ["done", "already-done"]
    assert len(hub.confirms) == 1
    assert hub.acks == [7, 7]


def test_a_patient_already_erased_still_confirms_with_the_first_evidence(
    keystore: PatientKeyStore, store: Store, gov_key: Ed25519PrivateKey
) -> None:
    surrogate, _, _ = patient(keystore)
    first_evidence = keystore.erase(surrogate)
    hub = FakeHub({"id": 3, "kind": "erasure", "payload": sign(erasure_body(surrogate), gov_key)})

    (outcome,) = cycle(hub, keystore, store, gov_key)

    assert outcome.result == "done"
    assert hub.confirms == [("e-1", first_evidence)]
    assert hub.acks == [3]


def test_a_failed_confirmation_is_retried_next_cycle_and_the_erasure_stays_done(
    keystore: PatientKeyStore, store: Store, gov_key: Ed25519PrivateKey
) -> None:
    surrogate, key_id, ciphertext = patient(keystore)
    hub = FakeHub({"id": 4, "kind": "erasure", "payload": sign(erasure_body(surrogate), gov_key)})
    hub.confirm_error = HubRequestFailed("HTTP 409")

    (failed,) = cycle(hub, keystore, store, gov_key)
    assert (failed.result, failed.acknowledged) == ("failed", False)
    with pytest.raises(KeyDestroyed):
        keystore.decrypt_phi(surrogate, key_id, ciphertext)

    hub.confirm_error = None
    (retried,) = cycle(hub, keystore, store, gov_key)
    assert retried.result == "done"
    assert len(hub.confirms) == 1
    assert hub.acks == [4]


@pytest.mark.parametrize("forgery", ["altered", "foreign key", "unsigned", "no trust anchor"])
def test_a_forged_or_altered_erasure_directive_destroys_nothing(
    keystore: PatientKeyStore,
    store: Store,
    gov_key: Ed25519PrivateKey,
    forgery: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    surrogate, key_id, ciphertext = patient(keystore)
    victim, victim_key, victim_ct = patient(keystore, "MRN-2")
    signed = sign(erasure_body(surrogate), gov_key)
    trusted: list[str] = [signing.public_key_b64(gov_key)]
    if forgery == "altered":
        payload = {**signed, "surrogate_id": victim}
    elif forgery == "foreign key":
        payload = sign(erasure_body(victim), signing.generate_signing_key())
    elif forgery == "unsigned":
        payload = erasure_body(victim)
    else:
        payload, trusted = sign(erasure_body(victim), gov_key), []
    hub = FakeHub({"id": 9, "kind": "erasure", "payload": payload})

    with caplog.at_level(logging.ERROR, logger="site_agent.directives"):
        outcomes = cycle(hub, keystore, store, gov_key, trusted=trusted)
        outcomes += cycle(hub, keystore, store, gov_key, trusted=trusted)

    assert [(o.result, o.acknowledged) for o in outcomes] == [("refused", False)] * 2
    assert keystore.decrypt_phi(victim, victim_key, victim_ct)["mrn"] == "MRN-2"
    assert keystore.decrypt_phi(surrogate, key_id, ciphertext)["mrn"] == "MRN-1"
    assert hub.confirms == []
    assert hub.acks == []
    assert caplog.text.count("REFUSED") == 1  # logged once, not every 30 seconds


def test_an_erasure_for_another_site_is_refused(
    keystore: PatientKeyStore, store: Store, gov_key: Ed25519PrivateKey
) -> None:
    surrogate, key_id, ciphertext = patient(keystore)
    payload = sign(erasure_body(surrogate, site="OTHER"), gov_key)
    hub = FakeHub({"id": 5, "kind": "erasure", "payload": payload})

    (outcome,) = cycle(hub, keystore, store, gov_key)

    assert outcome.result == "refused"
    assert keystore.decrypt_phi(surrogate, key_id, ciphertext)["mrn"] == "MRN-1"


def test_an_erasure_of_a_surrogate_this_site_never_issued_is_not_confirmed(
    keystore: PatientKeyStore, store: Store, gov_key: Ed25519PrivateKey
) -> None:
    hub = FakeHub({"id": 6, "kind": "erasure", "payload": sign(erasure_body("nope"), gov_key)})

    (outcome,) = cycle(hub, keystore, store, gov_key)

    assert (outcome.result, outcome.detail) == ("failed", "unknown surrogate")
    assert hub.confirms == []
    assert hub.acks == []


def test_diversion_is_stored_as_the_sites_ed_status_and_acknowledged(
    keystore: PatientKeyStore, store: Store, gov_key: Ed25519PrivateKey
) -> None:
    divert = {
        "id": 11,
        "kind": "diversion",
        "issued_at": "2026-11-23T23:00:00Z",
        "payload": {
            "status": "diversion",
            "ems_traffic": "Closed",
            "reason": "ED boarding above threshold",
            "routes": [{"class": "all", "destination": "H2", "share": 1.0}],
            "expires_at": "2026-11-24T03:00:00+00:00",
        },
    }
    reopen = {
        "id": 12,
        "kind": "diversion",
        "payload": {"status": "open", "ems_traffic": "Normal", "reason": "ended", "routes": []},
    }
    hub = FakeHub(divert)
    assert store.current_diversion() is None

    (first,) = cycle(hub, keystore, store, gov_key)
    current = store.current_diversion()
    assert first.result == "done"
    assert hub.acks == [11]
    assert current is not None
    assert (current["status"], current["ems_traffic"], current["directive_id"]) == (
        "diversion",
        "Closed",
        11,
    )
    assert current["expires_at"] == "2026-11-24T03:00:00+00:00"

    hub.queue.append(reopen)
    cycle(hub, keystore, store, gov_key)
    current = store.current_diversion()
    assert current is not None
    assert current["status"] == "open"


def test_an_unknown_kind_is_logged_once_and_left_pending(
    keystore: PatientKeyStore,
    store: Store,
    gov_key: Ed25519PrivateKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = FakeHub({"id": 20, "kind": "surge", "payload": {"level": 3}})

    with caplog.at_level(logging.WARNING, logger="site_agent.directives"):
        outcomes = cycle(hub, keystore, store, gov_key) + cycle(hub, keystore, store, gov_key)

    assert [(o.result, o.acknowledged) for o in outcomes] == [("unhandled", False)] * 2
    assert hub.acks == []
    assert caplog.text.count("does not handle") == 1


def test_one_failing_directive_does_not_stop_the_next(
    keystore: PatientKeyStore, store: Store, gov_key: Ed25519PrivateKey
) -> None:
    surrogate, _, _ = patient(keystore)
    hub = FakeHub(
        {"id": 1, "kind": "erasure", "payload": sign(erasure_body(surrogate), gov_key)},
        {"id": 2, "kind": "diversion", "payload": {"status": "open"}},
    )
    hub.confirm_error = RuntimeError("boom")

    outcomes = cycle(hub, keystore, store, gov_key)

    assert [o.result for o in outcomes] == ["failed", "done"]
    assert hub.acks == [2]


def test_verification_agrees_with_governances_signing(gov_key: Ed25519PrivateKey) -> None:
    from governance import control

    body = control.erasure_directive(
        directive_id="d1", erasure_id="e1", site_code=SITE, surrogate_id="sg-1", due_at="x"
    )
    signed = control.sign_directive(body, gov_key)
    assert verify_erasure(signed, signing.public_key_b64(gov_key))["surrogate_id"] == "sg-1"
    with pytest.raises(DirectiveRefused, match="bad signature"):
        verify_erasure({**signed, "surrogate_id": "sg-2"}, gov_key.public_key())


# --- the loop -----------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_ceiling_and_resets_after_success() -> None:
    delay = 30.0
    seen = []
    for _ in range(6):
        delay = next_delay(delay, interval=30, failed=True, ceiling=600)
        seen.append(delay)
    assert seen == [60, 120, 240, 480, 600, 600]
    assert next_delay(delay, interval=30, failed=False, ceiling=600) == 30


def test_the_loop_survives_an_unreachable_hub_and_a_crashing_cycle() -> None:
    calls: list[str] = []
    script: list[BaseException | None] = [HubUnavailable("down"), RuntimeError("bug"), None]

    def cycle_fn() -> list[Any]:
        error = script[len(calls)]
        calls.append(type(error).__name__)
        if error is not None:
            raise error
        return []

    poller = DirectivePoller(cycle_fn, interval=30, ceiling=600)
    results = [asyncio.run(poller.run_once()) for _ in range(2)]
    assert results == [False, False]
    assert poller.delay == 120
    assert asyncio.run(poller.run_once()) is True
    assert poller.delay == 30


def test_the_real_client_reports_an_unreachable_hub_as_unavailable() -> None:
    client = HubClient("http://127.0.0.1:1", "cred", timeout=2)
    with pytest.raises(HubUnavailable):
        client.pending_directives()


# --- configuration ------------------------------------------------------------------------


def test_hub_section_of_site_toml(tmp_path: Path) -> None:
    text = """
[site]
code = "S1"
[hub]
url = "http://127.0.0.1:8000/"
credential_file = "S1.credential"
governance_keys = ["AAAA"]
"""
    (tmp_path / "S1.credential").write_text("secret-cred\n")
    cfg = parse_config(tomllib.loads(text), base_env={}, base_dir=tmp_path)
    assert cfg.hub.enabled
    assert cfg.hub.url == "http://127.0.0.1:8000"
    assert cfg.hub.directives_interval_seconds == 30.0
    assert cfg.hub.read_credential() == "secret-cred"
    assert cfg.hub.governance_keys == ("AAAA",)
    assert "secret" not in repr(cfg.hub)

    env = {"DEID_GOVERNANCE_PUBLIC_KEYS": "K1,K2", "SITE_AGENT_HUB_CREDENTIAL": "from-env"}
    cfg = parse_config(tomllib.loads(text), base_env=env, base_dir=tmp_path)
    assert cfg.hub.governance_keys == ("K1", "K2")
    assert cfg.hub.read_credential() == "from-env"


def test_directives_are_off_without_a_hub_url_or_with_interval_zero() -> None:
    assert not parse_config({"site": {"code": "S1"}}, base_env={}).hub.enabled
    off = {"site": {"code": "S1"}, "hub": {"url": "http://h", "directives_interval_seconds": 0}}
    assert not parse_config(off, base_env={}).hub.enabled


# --- wired into the running agent ------------------------------------------------------------


def test_the_running_agent_polls_applies_and_acknowledges(
    tmp_path: Path, gov_key: Ed25519PrivateKey
) -> None:
    """``run`` starts the poller: a fake hub over real HTTP, the agent's own writer thread and
    key store (the file the DE-ID worker shares)."""
    from dataclasses import replace

    from aiohttp import web

    from site_agent.config import HubConfig
    from tests.site_agent.conftest import MASTER_KEY, make_config, with_agent

    keystore_path = tmp_path / "shared-keystore.sqlite3"
    ks = PatientKeyStore(keystore_path, MASTER_KEY)
    surrogate, key_id, ciphertext = patient(ks)
    config = make_config(tmp_path / "data")
    queue = [
        {"id": 1, "kind": "diversion", "payload": {"status": "diversion", "ems_traffic": "Closed"}},
        {
            "id": 2,
            "kind": "erasure",
            "payload": sign(erasure_body(surrogate, site=config.site_code), gov_key),
        },
    ]
    seen: dict[str, list[Any]] = {"acks": [], "confirms": [], "auth": []}

    async def listing(request: web.Request) -> web.Response:
        seen["auth"].append(request.headers.get("Authorization"))
        return web.json_response(queue)

    async def ack(request: web.Request) -> web.Response:
        directive_id = int(request.match_info["id"])
        seen["acks"].append(directive_id)
        queue[:] = [d for d in queue if d["id"] != directive_id]
        return web.json_response({"id": directive_id})

    async def confirm(request: web.Request) -> web.Response:
        seen["confirms"].append((request.match_info["id"], await request.json()))
        return web.json_response({"status": "closed"})

    async def body() -> Any:
        app = web.Application()
        app.router.add_get("/api/v1/site/directives/", listing)
        app.router.add_post("/api/v1/site/directives/{id}/ack/", ack)
        app.router.add_post("/api/v1/governance/site/erasure-requests/{id}/confirm/", confirm)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        hub = HubConfig(
            url=f"http://127.0.0.1:{port}",
            credential="site-cred",
            governance_keys=(signing.public_key_b64(gov_key),),
            directives_interval_seconds=0.2,
        )
        cfg = replace(config, hub=hub, keystore_path=keystore_path)

        async def wait_and_read(agent: Any) -> Any:
            for _ in range(100):
                if len(seen["acks"]) == 2:
                    break
                await asyncio.sleep(0.1)
            return await agent.call(lambda w: w.store.current_diversion())

        try:
            return await with_agent(cfg, wait_and_read)
        finally:
            await runner.cleanup()

    diversion = asyncio.run(body())

    assert seen["acks"] == [1, 2]
    assert seen["auth"][0] == "Bearer site-cred"
    ((erasure_id, posted),) = seen["confirms"]
    assert erasure_id == "e-1"
    assert posted["evidence"]["method"] == "crypto-shredding"
    assert diversion is not None
    assert diversion["status"] == "diversion"
    # Another process's view of the shared key store (the DE-ID worker's) drops its cached
    # keys once it sees the new erasure (within a second, or at once on refresh()).
    ks.refresh()
    with pytest.raises(KeyDestroyed):
        ks.decrypt_phi(surrogate, key_id, ciphertext)
    ks.close()


def test_a_missing_credential_turns_directives_off_without_stopping_the_agent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from dataclasses import replace

    from site_agent.config import HubConfig
    from tests.site_agent.conftest import make_config, with_agent

    config = make_config(tmp_path / "data")
    hub = HubConfig(url="http://127.0.0.1:1", credential_file=tmp_path / "missing.credential")
    cfg = replace(config, hub=hub, keystore_path=tmp_path / "keystore.sqlite3")

    async def body(agent: Any) -> bool:
        await asyncio.sleep(0.2)
        return agent.writer is not None

    with caplog.at_level(logging.ERROR, logger="site_agent"):
        assert asyncio.run(with_agent(cfg, body))
    assert "directives from the hub are OFF" in caplog.text


def test_status_prints_the_regions_diversion_directive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from site_agent.cli import main

    data = tmp_path / "data"
    config_path = tmp_path / "site.toml"
    config_path.write_text(f'[site]\ncode = "S1"\n[agent]\ndata_dir = "{data}"\n')
    store = Store(data / "agent.sqlite3")
    hub = FakeHub(
        {"id": 5, "kind": "diversion", "payload": {"status": "diversion", "ems_traffic": "Closed"}}
    )
    poll_once(site_code="S1", hub=hub, keystore=None, ledger=StoreLedger(store), trusted=[])
    store.close()

    assert main(["status", "--config", str(config_path)]) == 0
    assert "region directs the ED: diversion (EMS traffic Closed)" in capsys.readouterr().out
    assert main(["status", "--config", str(config_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["region_diversion"]["directive_id"] == 5
