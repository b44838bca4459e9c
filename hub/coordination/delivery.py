"""Alert delivery: e-mail through Django's e-mail backend and signed webhooks. Each attempt is
recorded (``AlertDelivery``); a failed channel never stops the others."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from hub.coordination import models as m
from hub.coordination.webhooks import HEADER, sign

logger = logging.getLogger("hub.coordination.delivery")
RANK = {"info": 0, "warning": 1, "critical": 2}
WEBHOOK_TIMEOUT_SECONDS = 5


def alert_body(alert: m.Alert, level: int) -> dict[str, Any]:
    return {
        "type": "twinhub.alert",
        "id": alert.pk,
        "key": alert.key,
        "kind": alert.kind,
        "severity": alert.severity,
        "title": alert.title,
        "message": alert.message,
        "hospital": alert.hospital.site_code if alert.hospital else None,
        "raised_at": alert.raised_at.isoformat(),
        "opened_at": alert.opened_at.isoformat(),
        "escalation_level": level,
        "figures": alert.figures,
        "state": alert.state,
    }


def deliver(alert: m.Alert, level: int) -> list[m.AlertDelivery]:
    """E-mail the recipients of this escalation level and (at the first level) post to the
    region's webhooks, for an alert severe enough for each. Escalations stop once it is
    acknowledged (a grouped alert opened again after an acknowledgement escalates again)."""
    if alert.state == m.Alert.State.RESOLVED or (
        level > 0 and alert.state == m.Alert.State.ACKNOWLEDGED
    ):
        return []
    rank = RANK.get(alert.severity, 0)
    out: list[m.AlertDelivery] = []
    recipients = [
        r.email
        for r in m.AlertRecipient.objects.filter(
            region_id=alert.region_id, active=True, escalation_level=level
        )
        if RANK.get(r.min_severity, 0) <= rank
    ]
    if recipients:
        prefix = f"[{alert.severity.upper()}]" + (f" escalation {level}" if level else "")
        ok, error = True, ""
        try:
            send_mail(
                subject=f"{prefix} {alert.title}"[:200],
                message=f"{alert.message}\n\nRaised {alert.raised_at:%Y-%m-%d %H:%M} UTC."
                + (
                    f" Open again since {alert.opened_at:%Y-%m-%d %H:%M} UTC (changed after "
                    "an acknowledgement)."
                    if alert.acknowledged_at and alert.state == m.Alert.State.OPEN
                    else ""
                ),
                from_email=getattr(settings, "DEFAULT_FROM_EMAIL", None),
                recipient_list=recipients,
            )
        except Exception as exc:  # the backend's own errors vary (SMTP, sockets, ...)
            ok, error = False, str(exc)[:1000]
            logger.warning("alert %s: e-mail failed: %s", alert.pk, exc)
        out.append(
            m.AlertDelivery.objects.create(
                alert=alert,
                channel=m.AlertDelivery.Channel.EMAIL,
                target=", ".join(recipients)[:500],
                escalation_level=level,
                attempted_at=timezone.now(),
                ok=ok,
                error=error,
            )
        )
    if level == 0:
        body = json.dumps(alert_body(alert, level), separators=(",", ":")).encode()
        for hook in m.WebhookEndpoint.objects.filter(region_id=alert.region_id, active=True):
            if RANK.get(hook.min_severity, 0) > rank:
                continue
            ok, error = post_webhook(hook.url, hook.secret.encode(), body)
            out.append(
                m.AlertDelivery.objects.create(
                    alert=alert,
                    channel=m.AlertDelivery.Channel.WEBHOOK,
                    target=hook.url,
                    escalation_level=level,
                    attempted_at=timezone.now(),
                    ok=ok,
                    error=error,
                )
            )
    return out


def post_webhook(url: str, secret: bytes, body: bytes) -> tuple[bool, str]:
    """POST ``body`` with its signature header; (ok, error)."""
    if urlsplit(url).scheme not in {"http", "https"}:
        return False, "only http and https webhooks are sent"
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            HEADER: sign(secret, body, int(time.time())),
            "User-Agent": "regional-twin-hub/1",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310  # nosec B310
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return False, str(exc)[:1000]
    return 200 <= status < 300, "" if 200 <= status < 300 else f"HTTP {status}"
