"""Nightly KPI refresh: yesterday by day, this week by week, this month by month (each run
recomputes the periods still open, so late records are counted)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from celery import shared_task
from django.utils import timezone

from hub.benchmarks import services
from hub.registry.models import Hospital


@shared_task(name="benchmarks.refresh")
def refresh() -> int:
    now = timezone.now()
    today = datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)
    hospitals = Hospital.objects.filter(active=True)
    written = services.kpis_refresh(
        hospitals=hospitals, period="day", since=today - timedelta(days=1), until=today
    )
    week = today - timedelta(days=today.weekday())
    written += services.kpis_refresh(hospitals=hospitals, period="week", since=week, until=now)
    month = today.replace(day=1)
    written += services.kpis_refresh(hospitals=hospitals, period="month", since=month, until=now)
    return written
