"""Celery tasks of the schedules: the one beat sweep (``molecule_site.celery``) and each run.

Thin wrappers over ``schedules.firing``.
"""

from __future__ import annotations

from celery import shared_task
from django.utils.dateparse import parse_datetime

from schedules import firing

# A run waits for the agent's answer through the proxy (its own idle and absolute limits);
# past this the worker gives the run up.
RUN_TIME_LIMIT_SECONDS = 35 * 60


@shared_task
def sweep_schedules() -> int:
    """Claim the due runs and hand each to a :func:`fire_schedule` task; returns how many."""
    claims = firing.schedules_claim_due()
    for claim in claims:
        fire_schedule.delay(claim.schedule_id, claim.next_fire_at.isoformat() if claim.next_fire_at else None)
    return len(claims)


@shared_task(soft_time_limit=RUN_TIME_LIMIT_SECONDS, ignore_result=True)
def fire_schedule(schedule_id: str, claimed_next: str | None, manual: bool = False) -> str:
    """One run: ``claimed_next`` is the deadline the sweep's claim set (ISO 8601), None for ``/run``."""
    return firing.schedule_fire(
        schedule_id=schedule_id, claimed_next=parse_datetime(claimed_next) if claimed_next else None, manual=manual)
