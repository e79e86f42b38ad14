"""Firing the schedules: the beat sweep's claim and each run (spec §19 "Schedules").

One beat task (``schedules.tasks.sweep_schedules``, every ``SCHEDULE_SWEEP_SECONDS``) reads the
enabled rows whose ``next_fire_at`` has passed (partial index ``idx_schedules_due``) and claims
each with ``UPDATE … SET next_fire_at = <next firing> WHERE id = … AND next_fire_at = <old>``:
of two sweepers that read the same row, one UPDATE matches and the other's matches nothing, so
a run is fired once. Each claimed run is a Celery task (:func:`schedule_fire`), so a slow agent
never holds up the sweep.

A run sends the prompt as an A2A ``message/send`` through the platform's proxy
(``registry.proxy.proxy_a2a_sync``) as caller ``system:cron``: the same URL resolution, SSRF
rule, budget gate, activity row on the target and metering as any call, and the proxy's wake of
a hibernated target. Outcomes:

- target busy (``active_tasks >= max_concurrent_tasks``, or the proxy answers 503 busy, waking
  or restarting, or the target is still provisioning): the run is deferred — ``next_fire_at``
  moves ``DEFER_STEP_SECONDS`` ahead and ``defer_until`` (first deferral + ``DEFER_WINDOW_SECONDS``)
  is stored; the worker never sleeps. Still busy at ``defer_until``: skipped, ``CRON_SKIPPED``.
- target paused: skipped at once (``CRON_SKIPPED``); removed: the schedule is disabled.
- a reply: ``CRON_EXECUTED``; an empty reply counts toward ``consecutive_empty``, and the
  ``STALE_AFTER_EMPTY_REPLIES``-th in a row makes the schedule ``stale`` (``SCHEDULE_STALE``);
  a reply with text resets it.
- the proxy queued the request (a busy agent timed out on it): ``queued``; the A2A queue
  delivers it, so it is not sent again.
- any other failure: ``error`` with the proxy's message.

Every run, skip included, writes one ``cron_run`` activity row (method ``cron``) on the
workspace: status, duration, error and a preview of the reply; ``schedule_id`` in its
``request_body`` is what the history route reads.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from activity.events import emit
from activity.services import activity_report
from registry.delegation import proxy_error
from registry.proxy import proxy_a2a_sync
from schedules import cron, selectors
from schedules.models import STALE_AFTER_EMPTY_REPLIES, ScheduleStatus, WorkspaceSchedule
from schedules.services import next_fire
from workspaces.models import WorkspaceStatus

log = logging.getLogger(__name__)

CALLER_ID = "system:cron"
DEFER_STEP_SECONDS = 10  # spec: 12 × 10 s
DEFER_WINDOW_SECONDS = 120
SWEEP_BATCH = 500
REPLY_PREVIEW_CHARS = 200
LIVE = (WorkspaceStatus.ONLINE, WorkspaceStatus.DEGRADED)


@dataclass(frozen=True)
class Claim:
    """A run a sweep claimed: the schedule, the deadline it had, the one the claim set."""

    schedule_id: str
    due_at: datetime
    next_fire_at: datetime | None


def schedules_claim_due(*, now: datetime | None = None, limit: int = SWEEP_BATCH) -> list[Claim]:
    """Claim every due run (oldest deadline first); returns the claims this caller won."""
    now = now or timezone.now()
    claims = []
    for schedule_id, due_at, cron_expr, zone_name in selectors.due_schedules(now, limit=limit):
        try:
            upcoming = next_fire(cron_expr, zone_name, after=now)
        except cron.CronError:  # stored rows are checked; a zone gone from tzdata stops the schedule
            log.warning("schedule %s: %r in %s no longer evaluates; disabling it", schedule_id, cron_expr, zone_name)
            WorkspaceSchedule.objects.filter(pk=schedule_id, next_fire_at=due_at).update(
                enabled=False, next_fire_at=None, defer_until=None, last_error="cron expression no longer valid")
            continue
        won = WorkspaceSchedule.objects.filter(pk=schedule_id, enabled=True, next_fire_at=due_at).update(
            next_fire_at=upcoming)
        if won:
            claims.append(Claim(str(schedule_id), due_at, upcoming))
    return claims


# --- Reading a reply ----------------------------------------------------------------------------------

def _texts(parts) -> list[str]:
    if not isinstance(parts, list):
        return []
    return [part["text"] for part in parts
            if isinstance(part, dict) and part.get("kind", part.get("type")) == "text" and isinstance(part.get("text"), str)]


def reply_text(body: bytes) -> str:
    """The text an agent's ``message/send`` reply carries: a Message's parts, a Task's artifacts
    and status message. '' when there is none (an empty reply)."""
    try:
        result = json.loads(body).get("result")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return body.decode("utf-8", errors="replace").strip()
    if isinstance(result, str):
        return result.strip()
    if not isinstance(result, dict):
        return ""
    texts = _texts(result.get("parts"))
    for artifact in result.get("artifacts") or []:
        if isinstance(artifact, dict):
            texts += _texts(artifact.get("parts"))
    status = result.get("status")
    if isinstance(status, dict) and isinstance(status.get("message"), dict):
        texts += _texts(status["message"].get("parts"))
    return "\n".join(text for text in texts if text.strip()).strip()


def rpc_error(body: bytes) -> str | None:
    """A JSON-RPC ``error`` in a 2xx reply (the agent refused or failed the task)."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "agent error")
    return str(error) if error else None


def _flags(body: bytes) -> dict:
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def busy_reason(result) -> str | None:
    """Why a proxy answer means "try again shortly" (None: it does not)."""
    if result.status != 503:
        return None
    flags = _flags(result.body)
    if flags.get("waking"):
        return "workspace waking from hibernation"
    if flags.get("busy"):
        return "workspace busy"
    if result.restarting or flags.get("restarting"):
        return "workspace restarting"
    if flags.get("status") == WorkspaceStatus.PROVISIONING:
        return "workspace provisioning"
    return None


def a2a_message(schedule: WorkspaceSchedule) -> bytes:
    return json.dumps({
        "method": "message/send",
        "params": {"message": {
            "role": "user", "messageId": str(uuid.uuid4()),
            "parts": [{"kind": "text", "text": schedule.prompt}],
            "metadata": {"source": "cron", "schedule_id": str(schedule.id), "schedule_name": schedule.name},
        }},
    }, separators=(",", ":"), ensure_ascii=False).encode()


# --- A run ----------------------------------------------------------------------------------------------

def _preview(text: str) -> str:
    return text if len(text) <= REPLY_PREVIEW_CHARS else text[:REPLY_PREVIEW_CHARS] + "…"


def _record(schedule: WorkspaceSchedule, *, status: str, summary: str, duration_ms: int | None = None,
            error: str | None = None, reply: str = "", manual: bool = False) -> None:
    activity_report(
        workspace_id=schedule.workspace_id, activity_type=selectors.ACTIVITY_TYPE, source_id=None,
        target_id=schedule.workspace_id, method=selectors.ACTIVITY_METHOD, summary=summary, status=status,
        error_detail=error, duration_ms=duration_ms,
        request_body={"schedule_id": str(schedule.id), "schedule_name": schedule.name, "prompt": schedule.prompt,
                      "manual": manual},
        response_body={"reply_preview": _preview(reply)} if reply else None,
    )


def _claimed(schedule_id, claimed_next):
    """The row still as the claim left it (None when edited, disabled or deleted since)."""
    rows = WorkspaceSchedule.objects.select_for_update().filter(pk=schedule_id)
    if claimed_next is not None:
        rows = rows.filter(enabled=True, next_fire_at=claimed_next)
    return rows.first()


def _skip(schedule: WorkspaceSchedule, claimed_next, reason: str, *, manual: bool) -> str:
    with transaction.atomic():
        row = _claimed(schedule.id, claimed_next)
        if row is None:
            return "superseded"
        WorkspaceSchedule.objects.filter(pk=row.pk).update(
            defer_until=None, last_run_at=timezone.now(), last_status="skipped", last_error=reason,
            updated_at=timezone.now())
        _record(row, status="skipped", summary=f"Schedule '{row.name}' skipped: {reason}", error=reason, manual=manual)
        emit("CRON_SKIPPED", row.workspace_id, {"schedule_id": str(row.id), "schedule_name": row.name, "reason": reason})
    return "skipped"


def _defer(schedule: WorkspaceSchedule, claimed_next, reason: str) -> str:
    """Try again in ``DEFER_STEP_SECONDS``, or skip once the deferral window is over."""
    now = timezone.now()
    deadline = schedule.defer_until or now + timedelta(seconds=DEFER_WINDOW_SECONDS)
    if now >= deadline:
        return _skip(schedule, claimed_next, f"{reason} for {DEFER_WINDOW_SECONDS} s", manual=False)
    retry_at = now + timedelta(seconds=DEFER_STEP_SECONDS)
    if claimed_next is not None:
        retry_at = min(retry_at, claimed_next)
    moved = WorkspaceSchedule.objects.filter(pk=schedule.pk, enabled=True, next_fire_at=claimed_next).update(
        next_fire_at=retry_at, defer_until=deadline)
    return "deferred" if moved else "superseded"


def _finish(schedule: WorkspaceSchedule, claimed_next, *, status: str, duration_ms: int, reply: str = "",
            error: str | None = None, manual: bool) -> str:
    """Record a run that reached the agent (or failed trying)."""
    with transaction.atomic():
        row = WorkspaceSchedule.objects.select_for_update().filter(pk=schedule.pk).first()
        if row is None:
            return "gone"
        empty = status == "ok" and not reply
        became_stale = False
        if status == "ok":
            row.consecutive_empty = row.consecutive_empty + 1 if empty else 0
            if empty and row.consecutive_empty >= STALE_AFTER_EMPTY_REPLIES:
                became_stale = row.status != ScheduleStatus.STALE
                row.status, status = ScheduleStatus.STALE, "stale"
            elif not empty:
                row.status = ScheduleStatus.OK
        elif status == "error":
            row.status = ScheduleStatus.ERROR
        now = timezone.now()
        fields = {"consecutive_empty": row.consecutive_empty, "status": row.status, "last_run_at": now,
                  "last_status": status, "last_error": error, "run_count": F("run_count") + 1, "updated_at": now}
        if claimed_next is not None:  # a run that waited is no longer deferred (unless edited since)
            WorkspaceSchedule.objects.filter(pk=row.pk, next_fire_at=claimed_next).update(defer_until=None)
        WorkspaceSchedule.objects.filter(pk=row.pk).update(**fields)
        if status == "stale":
            summary = f"Schedule '{row.name}': empty reply ({row.consecutive_empty} in a row) — stale"
        elif empty:
            summary = f"Schedule '{row.name}': empty reply ({row.consecutive_empty} in a row)"
        elif status == "error":
            summary = f"Schedule '{row.name}' failed: {error}"
        elif status == "queued":
            summary = f"Schedule '{row.name}': target busy, request queued"
        else:
            summary = f"Schedule '{row.name}' ran"
        _record(row, status=status, summary=summary, duration_ms=duration_ms, error=error, reply=reply, manual=manual)
        emit("CRON_EXECUTED", row.workspace_id, {
            "schedule_id": str(row.id), "schedule_name": row.name, "status": status, "duration_ms": duration_ms,
            "consecutive_empty": row.consecutive_empty, "manual": manual, **({"error": error} if error else {}),
        })
        if became_stale:
            emit("SCHEDULE_STALE", row.workspace_id, {
                "schedule_id": str(row.id), "schedule_name": row.name, "consecutive_empty": row.consecutive_empty})
    return status


def schedule_fire(*, schedule_id, claimed_next: datetime | None, manual: bool = False) -> str:
    """Run a claimed schedule (``claimed_next``: the deadline the claim set), or, with
    ``manual``, fire it now whatever its deadline (``POST …/run``: no deferral, a busy target
    gets the proxy's own answer). Returns the outcome (for logs and tests)."""
    schedule = WorkspaceSchedule.objects.select_related("workspace").filter(pk=schedule_id).first()
    if schedule is None:
        return "gone"
    if not manual and (not schedule.enabled or schedule.next_fire_at != claimed_next):
        return "superseded"  # edited or disabled since the claim: the new deadline rules
    workspace = schedule.workspace
    if workspace.status == WorkspaceStatus.REMOVED:
        WorkspaceSchedule.objects.filter(pk=schedule.pk).update(enabled=False, next_fire_at=None, defer_until=None)
        return "disabled"
    if workspace.status == WorkspaceStatus.PAUSED:
        return _skip(schedule, claimed_next, "workspace paused", manual=manual)
    if not manual and workspace.status in LIVE and workspace.active_tasks >= workspace.max_concurrent_tasks:
        return _defer(schedule, claimed_next, "workspace busy")

    started = time.monotonic()
    try:
        result = proxy_a2a_sync(target_id=str(workspace.id), caller_id=CALLER_ID, body=a2a_message(schedule))
    except Exception as exc:  # noqa: BLE001 - a run that could not be sent is an error run, visibly
        log.exception("schedule %s: sending to %s failed", schedule.id, workspace.id)
        return _finish(schedule, claimed_next, status="error", duration_ms=int((time.monotonic() - started) * 1000),
                       error=str(exc) or type(exc).__name__, manual=manual)
    duration_ms = int((time.monotonic() - started) * 1000)
    reason = busy_reason(result)
    if reason is not None and not manual:
        return _defer(schedule, claimed_next, reason)
    if result.status == 202 and result.queued:
        return _finish(schedule, claimed_next, status="queued", duration_ms=duration_ms, manual=manual)
    if result.status >= 300:
        return _finish(schedule, claimed_next, status="error", duration_ms=duration_ms, error=proxy_error(result),
                       manual=manual)
    error = rpc_error(result.body)
    if error is not None:
        return _finish(schedule, claimed_next, status="error", duration_ms=duration_ms, error=error, manual=manual)
    return _finish(schedule, claimed_next, status="ok", duration_ms=duration_ms, reply=reply_text(result.body),
                   manual=manual)
