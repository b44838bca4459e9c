"""Directives from the regional hub: fetch, apply, confirm, acknowledge.

The hub keeps a queue of directives per site (``GET /api/v1/site/directives/``); the agent
polls it with its enrolment credential, applies each directive in order and acknowledges it
(``POST /api/v1/site/directives/<id>/ack/``). Talking HTTP only: the agent never imports the
hub or governance.

- ``erasure``: governance's signed erasure directive. The signature is checked against the
  governance public keys the site trusts (the same ones the DE-ID worker trusts for policies);
  an unsigned, altered or foreign directive is refused and left un-acknowledged — destroying
  a key is irreversible, so a forged directive must never get that far. Then the patient is
  crypto-shredded in the site key store (``PatientKeyStore.erase``: data keys and the
  surrogate-to-MRN registry row), the key store's evidence goes to governance's confirm
  endpoint, and the directive is acknowledged.
- ``diversion``: the region's decision about this site's ED (status, EMS traffic, routes,
  expiry) is stored in the agent's database, logged, and acknowledged.
- anything else: logged once and left un-acknowledged, so the hub still shows it pending.

Idempotent: the agent's store remembers what it did per directive id, so a directive seen
again (a lost ack) is only acknowledged again; a patient already erased yields the key
store's first evidence again and governance accepts a repeated confirmation as a no-op.
A failure in one directive is logged and does not stop the others; the hub being
unreachable makes the loop back off and try again.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature

from deid import signing
from deid.keystore import UnknownKey

__all__ = [
    "ERASURE_SIGNING_DOMAIN",
    "ERASURE_TYPE",
    "DirectiveLedger",
    "DirectivePoller",
    "DirectiveRefused",
    "HubClient",
    "HubUnavailable",
    "KeyEraser",
    "Outcome",
    "SiteHub",
    "StoreLedger",
    "handle_directive",
    "next_delay",
    "poll_once",
    "verify_erasure",
]

log = logging.getLogger("site_agent.directives")

# Governance's wire contract for erasure directives (governance/control.py). Repeated here
# because the agent must not import governance; tests sign with governance's own code and
# verify with this one, so the two cannot drift apart unnoticed.
ERASURE_TYPE = "control.erasure"
ERASURE_SIGNING_DOMAIN = b"regional-twin-hub/erasure-directive/v1\n"

DONE = "done"
REFUSED = "refused"
UNHANDLED = "unhandled"


class DirectiveRefused(ValueError):
    """A directive the agent will not apply (unsigned, altered, untrusted, not for this site)."""


class HubUnavailable(RuntimeError):
    """The hub did not answer, or answered with a server error: try again later."""


class HubRequestFailed(RuntimeError):
    """The hub refused one request (4xx): that directive is retried on the next cycle."""


# --- the signature check ------------------------------------------------------------------


def _canonical(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode()


def verify_erasure(directive: Mapping[str, Any], trusted: signing.PublicKeys) -> dict[str, Any]:
    """The erasure directive if a trusted governance key signed exactly these fields, else
    ``DirectiveRefused``. No trusted key configured refuses everything (fail closed)."""
    sig = directive.get("signature")
    if directive.get("record_type") != ERASURE_TYPE or not isinstance(sig, Mapping):
        raise DirectiveRefused("not a signed erasure directive")
    keys = signing.public_keys_by_id(trusted) if trusted else {}
    if not keys:
        raise DirectiveRefused("no governance public key is configured: cannot verify")
    key = keys.get(str(sig.get("key_id", "")))
    if key is None:
        raise DirectiveRefused("signed by a key that is not trusted")
    body = {k: v for k, v in directive.items() if k != "signature"}
    try:
        key.verify(
            base64.b64decode(str(sig.get("value", "")), validate=True),
            ERASURE_SIGNING_DOMAIN + _canonical(body),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise DirectiveRefused("bad signature (altered or not signed by governance)") from None
    return dict(directive)


# --- the boundaries: the hub, the key store, the agent's own store --------------------------


class SiteHub(Protocol):
    """What the directive logic needs from the hub's site API."""

    def pending_directives(self) -> list[dict[str, Any]]: ...

    def acknowledge(self, directive_id: int) -> None: ...

    def confirm_erasure(self, erasure_id: str, evidence: Mapping[str, Any]) -> None: ...


class KeyEraser(Protocol):
    """What the directive logic needs from ``deid.keystore.PatientKeyStore``."""

    def erase(self, surrogate_id: str) -> dict[str, Any]: ...


class DirectiveLedger(Protocol):
    """Where the agent remembers what it did with each directive (its own store)."""

    def directive_outcome(self, directive_id: int) -> str | None: ...

    def record_directive(
        self,
        directive_id: int,
        *,
        kind: str,
        outcome: str,
        payload: dict[str, Any],
        at: str,
        detail: str = "",
    ) -> None: ...


class StoreLedger:
    """A ``DirectiveLedger`` on a ``site_agent.store.Store`` used from one thread (tools and
    tests; the running agent goes through its writer thread instead)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def directive_outcome(self, directive_id: int) -> str | None:
        result: str | None = self.store.directive_outcome(directive_id)
        return result

    def record_directive(
        self,
        directive_id: int,
        *,
        kind: str,
        outcome: str,
        payload: dict[str, Any],
        at: str,
        detail: str = "",
    ) -> None:
        self.store.record_directive(
            directive_id, kind=kind, outcome=outcome, payload=payload, at=at, detail=detail
        )


class HubClient:
    """The hub's site API over HTTPS (``urllib``; one short request at a time, in a thread)."""

    def __init__(self, base_url: str, credential: str, *, timeout: float = 10.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("the hub URL must be http:// or https://")
        self.base_url = base_url.rstrip("/")
        self._credential = credential.strip()
        self.timeout = timeout

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = None if body is None else _canonical(body)
        request = urllib.request.Request(  # noqa: S310 (scheme checked in __init__)
            self.base_url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self._credential}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310  # nosec B310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            text = exc.read()[:500].decode("utf-8", "replace")
            if exc.code >= 500 or exc.code in (408, 429):
                raise HubUnavailable(f"{method} {path}: HTTP {exc.code} {text}") from None
            raise HubRequestFailed(f"{method} {path}: HTTP {exc.code} {text}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise HubUnavailable(f"{method} {path}: {exc}") from None
        return json.loads(raw) if raw else None

    def pending_directives(self) -> list[dict[str, Any]]:
        rows = self._request("GET", "/api/v1/site/directives/")
        if not isinstance(rows, list):
            raise HubRequestFailed("the directive list is not a JSON array")
        return [r for r in rows if isinstance(r, dict)]

    def acknowledge(self, directive_id: int) -> None:
        self._request("POST", f"/api/v1/site/directives/{int(directive_id)}/ack/")

    def confirm_erasure(self, erasure_id: str, evidence: Mapping[str, Any]) -> None:
        # The path is built here, not taken from the directive: the agent only ever talks to
        # the hub's own confirm endpoint, whatever a directive says.
        safe = urllib.parse.quote(str(erasure_id), safe="")
        self._request(
            "POST",
            f"/api/v1/governance/site/erasure-requests/{safe}/confirm/",
            {"evidence": dict(evidence)},
        )


# --- the logic ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    directive_id: int
    kind: str
    result: str  # done | already-done | refused | unhandled | failed
    acknowledged: bool
    detail: str = ""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _erase(
    directive: Mapping[str, Any],
    *,
    site_code: str,
    hub: SiteHub,
    keystore: KeyEraser | None,
    trusted: signing.PublicKeys,
) -> tuple[str, dict[str, Any]]:
    """Verify, crypto-shred, confirm. Returns (erasure id, what the ledger keeps)."""
    payload = directive.get("payload")
    if not isinstance(payload, Mapping):
        raise DirectiveRefused("the directive has no payload")
    signed = verify_erasure(payload, trusted)
    if site_code not in (signed.get("site_codes") or []):
        raise DirectiveRefused(f"the directive is for {signed.get('site_codes')}, not {site_code}")
    surrogate = str(signed.get("surrogate_id") or "")
    erasure_id = str(signed.get("erasure_id") or "")
    if not surrogate or not erasure_id:
        raise DirectiveRefused("the directive names no surrogate or no erasure request")
    if keystore is None:
        raise RuntimeError("no key store is configured at this site (DEID_KEYSTORE)")
    # Erasing twice returns the first evidence: a crash between here and the confirmation
    # costs nothing but a second confirmation, which governance treats as a no-op.
    evidence = keystore.erase(surrogate)
    hub.confirm_erasure(erasure_id, evidence)
    kept = {
        "erasure_id": erasure_id,
        "governance_directive_id": str(signed.get("directive_id", "")),
        "erased_at": evidence.get("erased_at"),
        "evidence_sha256": evidence.get("evidence_sha256"),
        "data_keys_destroyed": len(evidence.get("data_keys_destroyed") or []),
    }
    return erasure_id, kept


def _diversion(directive: Mapping[str, Any], *, site_code: str) -> dict[str, Any]:
    payload = directive.get("payload")
    if not isinstance(payload, Mapping) or not isinstance(payload.get("status"), str):
        raise DirectiveRefused("a diversion directive needs a payload with a status")
    kept = {
        **{str(k): v for k, v in payload.items()},
        "issued_at": directive.get("issued_at"),
        "expires_at": payload.get("expires_at") or directive.get("expires_at"),
    }
    log.warning(
        "region directs %s ED: %s (EMS traffic %s) until %s — %s",
        site_code,
        kept["status"],
        kept.get("ems_traffic", "?"),
        kept.get("expires_at") or "further notice",
        kept.get("reason", ""),
    )
    return kept


def handle_directive(
    directive: Mapping[str, Any],
    *,
    site_code: str,
    hub: SiteHub,
    keystore: KeyEraser | None,
    ledger: DirectiveLedger,
    trusted: signing.PublicKeys,
) -> Outcome:
    """Apply one directive (see the module docstring); never raises for a bad directive."""
    try:
        directive_id = int(directive["id"])
    except (KeyError, TypeError, ValueError):
        log.error("a directive without a usable id: %r", directive)
        return Outcome(0, str(directive.get("kind", "")), "failed", False, "no id")
    kind = str(directive.get("kind", ""))
    previous = ledger.directive_outcome(directive_id)
    if previous == DONE:
        # Applied before, the acknowledgement was lost: acknowledge again, apply nothing.
        hub.acknowledge(directive_id)
        return Outcome(directive_id, kind, "already-done", True)
    try:
        if kind == "erasure":
            _, kept = _erase(
                directive, site_code=site_code, hub=hub, keystore=keystore, trusted=trusted
            )
            log.warning(
                "erasure request %s: patient crypto-shredded (%d data keys destroyed), "
                "confirmed to governance",
                kept["erasure_id"],
                kept["data_keys_destroyed"],
            )
        elif kind == "diversion":
            kept = _diversion(directive, site_code=site_code)
        else:
            if previous != UNHANDLED:
                log.warning(
                    "directive %d of kind %r: this agent does not handle it; left pending",
                    directive_id,
                    kind,
                )
                ledger.record_directive(
                    directive_id, kind=kind, outcome=UNHANDLED, payload={}, at=_now()
                )
            return Outcome(directive_id, kind, "unhandled", False)
    except DirectiveRefused as exc:
        if previous != REFUSED:
            log.error("directive %d (%s) REFUSED: %s; left pending", directive_id, kind, exc)
            ledger.record_directive(
                directive_id, kind=kind, outcome=REFUSED, payload={}, at=_now(), detail=str(exc)
            )
        return Outcome(directive_id, kind, "refused", False, str(exc))
    except UnknownKey:
        # A surrogate this key store never issued: confirming would be a false statement.
        log.error(
            "erasure directive %d names a surrogate this site's key store does not know; "
            "left pending (is DEID_KEYSTORE the DE-ID worker's key store?)",
            directive_id,
        )
        return Outcome(directive_id, kind, "failed", False, "unknown surrogate")
    ledger.record_directive(directive_id, kind=kind, outcome=DONE, payload=kept, at=_now())
    hub.acknowledge(directive_id)
    return Outcome(directive_id, kind, "done", True)


def poll_once(
    *,
    site_code: str,
    hub: SiteHub,
    keystore: KeyEraser | None,
    ledger: DirectiveLedger,
    trusted: signing.PublicKeys,
) -> list[Outcome]:
    """One cycle: fetch the pending directives and handle each, oldest first.
    ``HubUnavailable`` from the fetch propagates (the loop backs off); anything failing
    within one directive is logged and the next one is handled."""
    outcomes = []
    for directive in hub.pending_directives():
        try:
            outcome = handle_directive(
                directive,
                site_code=site_code,
                hub=hub,
                keystore=keystore,
                ledger=ledger,
                trusted=trusted,
            )
        except HubUnavailable:
            raise
        except Exception as exc:
            log.exception("directive %s failed; it is retried next cycle", directive.get("id"))
            outcome = Outcome(
                int(directive.get("id") or 0), str(directive.get("kind")), "failed", False, str(exc)
            )
        outcomes.append(outcome)
    return outcomes


def next_delay(current: float, *, interval: float, failed: bool, ceiling: float) -> float:
    """The wait before the next cycle: the interval after a success; after a failure, double
    the last wait (starting from the interval), capped at ``ceiling``."""
    if not failed:
        return interval
    return min(max(current, interval) * 2, max(ceiling, interval))


class DirectivePoller:
    """The agent's loop: ``cycle`` (a blocking ``poll_once``) in a thread, then sleep."""

    def __init__(
        self,
        cycle: Callable[[], Sequence[Outcome]],
        *,
        interval: float,
        ceiling: float = 600.0,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.cycle = cycle
        self.interval = interval
        self.ceiling = ceiling
        self._sleep = sleep
        self.delay = interval

    async def run_once(self) -> bool:
        """One cycle; True when the hub answered. Never raises except on cancellation."""
        try:
            await asyncio.to_thread(self.cycle)
        except asyncio.CancelledError:
            raise
        except HubUnavailable as exc:
            self.delay = next_delay(
                self.delay, interval=self.interval, failed=True, ceiling=self.ceiling
            )
            log.warning("hub unreachable (%s); next directive poll in %.0f s", exc, self.delay)
            return False
        except Exception:
            self.delay = next_delay(
                self.delay, interval=self.interval, failed=True, ceiling=self.ceiling
            )
            log.exception("directive poll failed; next in %.0f s", self.delay)
            return False
        self.delay = self.interval
        return True

    async def run(self) -> None:
        while True:
            await self.run_once()
            await self._sleep(self.delay)
