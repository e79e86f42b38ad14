"""Async delegation (spec §9): one workspace hands a task to another and learns the outcome later.

``POST /workspaces/:id/delegate`` records a ``delegation``/``delegate`` activity row on the
SOURCE workspace, announces ``DELEGATION_SENT`` and, on commit, queues :func:`execute_delegation`.
That Celery task sends the task as an A2A ``message/send`` through the proxy core with the
source as caller (so the hierarchy rule applies), retries once after
``DELEGATION_RETRY_DELAY_SECONDS`` when the target was unreachable (502) or restarting (503),
and records the outcome as a ``delegate_result`` row plus a ``DELEGATION_*`` event.

Runtimes that call their peers themselves use ``/delegations/record`` and
``/delegations/:delegation_id/update`` to keep the same rows. Every row lives on the source
workspace; the ``delegation_id`` (a uuid string) sits in ``request_body`` and is the A2A
``messageId``.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass

from celery import shared_task
from celery.exceptions import Retry
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction

from activity import selectors as activity_selectors
from activity.events import emit
from activity.models import ActivityLog
from registry.proxy import proxy_a2a_sync
from traces import otel

log = logging.getLogger(__name__)

ACTIVITY_TYPE = "delegation"
METHOD_DELEGATE = "delegate"
METHOD_RESULT = "delegate_result"
TASK_PREVIEW_CHARS = 100
SUMMARY_PREVIEW_CHARS = 80
RESPONSE_PREVIEW_CHARS = 200
# Spec: the background part of a delegation gives up after 30 minutes.
DELEGATION_TIME_LIMIT_SECONDS = 30 * 60
TRACKING_UNAVAILABLE = "delegation dispatched but status tracking unavailable"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def a2a_message(*, delegation_id: str, task: str) -> bytes:
    """The ``message/send`` request a delegation sends (the proxy adds ``jsonrpc`` and ``id``)."""
    return json.dumps(
        {
            "method": "message/send",
            "params": {
                "message": {
                    "role": "user",
                    "messageId": delegation_id,
                    "parts": [{"type": "text", "text": task}],
                    "metadata": {"delegation_id": delegation_id},
                }
            },
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


# --- Services -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """A route's status and body."""

    status: int
    body: dict


def _delegate_row(*, source_id, target_id, task: str, delegation_id: str, status: str, key: str | None) -> ActivityLog:
    return ActivityLog.objects.create(
        workspace_id=source_id, activity_type=ACTIVITY_TYPE, method=METHOD_DELEGATE,
        source_id=source_id, target_id=target_id, summary=f"Delegating to {target_id}",
        request_body={"task": task, "delegation_id": delegation_id}, status=status, idempotency_key=key,
    )


def _idempotent_hit(row: ActivityLog) -> Answer:
    body = row.request_body if isinstance(row.request_body, dict) else {}
    return Answer(200, {
        "delegation_id": body.get("delegation_id", ""),
        "status": row.status,
        "target_id": str(row.target_id) if row.target_id else "",
        "idempotent_hit": True,
    })


def _sent(source_id, target_id, delegation_id: str, task: str) -> None:
    emit("DELEGATION_SENT", source_id, {
        "delegation_id": delegation_id, "target_id": str(target_id),
        "task_preview": truncate(task, TASK_PREVIEW_CHARS),
    })


@transaction.atomic
def delegation_start(*, source_id: uuid.UUID, target_id: uuid.UUID, task: str, idempotency_key: str | None,
                     traceparent: str | None = None) -> Answer:
    """``POST /delegate``: record the delegation and queue its delivery once this commits.

    With an idempotency key, a live earlier delegation with that key is returned instead
    (``idempotent_hit``); a ``failed`` one is deleted so the task can be tried again. The
    request's ``traceparent`` travels with the task, so its ``a2a.delegate`` span joins the trace.
    """
    key = idempotency_key or None
    if key is not None:
        existing = (
            ActivityLog.objects.select_for_update()
            .filter(workspace_id=source_id, idempotency_key=key)
            .first()
        )
        if existing is not None:
            if existing.status != "failed":
                return _idempotent_hit(existing)
            existing.delete()

    delegation_id = str(uuid.uuid4())
    tracked = True
    try:
        with transaction.atomic():
            _delegate_row(source_id=source_id, target_id=target_id, task=task, delegation_id=delegation_id,
                          status="pending", key=key)
    except IntegrityError:
        # A concurrent request with the same key won the insert: answer with its delegation
        # instead of sending the task twice (the original would dispatch both).
        winner = activity_selectors.delegation_by_idempotency_key(source_id=source_id, key=key) if key else None
        if winner is not None:
            return _idempotent_hit(winner)
        raise
    except DatabaseError:
        log.exception("delegation %s: could not record the delegate row", delegation_id)
        tracked = False

    _sent(source_id, target_id, delegation_id, task)
    args = (str(source_id), str(target_id), delegation_id, task) + ((traceparent,) if traceparent else ())
    transaction.on_commit(lambda: execute_delegation.delay(*args), robust=True)
    body = {"delegation_id": delegation_id, "status": "delegated", "target_id": str(target_id)}
    if not tracked:
        body["warning"] = TRACKING_UNAVAILABLE
    return Answer(202, body)


@transaction.atomic
def delegation_record(*, source_id: uuid.UUID, target_id: uuid.UUID, task: str, delegation_id: str) -> Answer:
    """``POST /delegations/record``: a delegation the runtime sends itself, already dispatched."""
    _delegate_row(source_id=source_id, target_id=target_id, task=task, delegation_id=delegation_id,
                  status="dispatched", key=None)
    _sent(source_id, target_id, delegation_id, task)
    return Answer(202, {"delegation_id": delegation_id, "status": "recorded"})


def _set_status(*, source_id, delegation_id: str, status: str, error: str | None = None) -> None:
    changes = {"status": status}
    if error is not None:
        changes["error_detail"] = error
    ActivityLog.objects.filter(
        workspace_id=source_id, activity_type=ACTIVITY_TYPE, method=METHOD_DELEGATE,
        request_body__delegation_id=delegation_id,
    ).update(**changes)


def _result_row(*, source_id, target_id, status: str, summary: str, response_body: dict, error: str | None = None):
    ActivityLog.objects.create(
        workspace_id=source_id, activity_type=ACTIVITY_TYPE, method=METHOD_RESULT, source_id=source_id,
        target_id=target_id, summary=summary, response_body=response_body, status=status, error_detail=error,
    )


def _completed_summary(text: str) -> str:
    return f"Delegation completed ({truncate(text, SUMMARY_PREVIEW_CHARS)})"


@transaction.atomic
def delegation_update(
    *, source_id: uuid.UUID, delegation_id: str, status: str, error: str, response_preview: str
) -> Answer:
    """``POST /delegations/:delegation_id/update``: the runtime reports how its delegation ended."""
    _set_status(source_id=source_id, delegation_id=delegation_id, status=status,
                error=(error or None) if status == "failed" else None)
    if status == "completed":
        row = activity_selectors.delegation_row(source_id=source_id, delegation_id=delegation_id)
        _result_row(
            source_id=source_id, target_id=row.target_id if row else None, status="completed",
            summary=_completed_summary(response_preview),
            response_body={"text": response_preview, "delegation_id": delegation_id},
        )
        emit("DELEGATION_COMPLETE", source_id, {"delegation_id": delegation_id, "response_preview": response_preview})
    else:
        emit("DELEGATION_FAILED", source_id, {"delegation_id": delegation_id, "error": error})
    return Answer(200, {"status": status, "delegation_id": delegation_id})


@transaction.atomic
def delegation_mark_dispatched(*, source_id: str, target_id: str, delegation_id: str) -> None:
    _set_status(source_id=source_id, delegation_id=delegation_id, status="dispatched")
    emit("DELEGATION_STATUS", source_id,
         {"delegation_id": delegation_id, "target_id": target_id, "status": "dispatched"})


@transaction.atomic
def delegation_fail(*, source_id: str, target_id: str, delegation_id: str, error: str) -> None:
    _set_status(source_id=source_id, delegation_id=delegation_id, status="failed", error=error)
    _result_row(source_id=source_id, target_id=target_id, status="failed", summary="Delegation failed",
                response_body={"delegation_id": delegation_id}, error=error)
    emit("DELEGATION_FAILED", source_id, {"delegation_id": delegation_id, "target_id": target_id, "error": error})


@transaction.atomic
def delegation_queue(*, source_id: str, target_id: str, delegation_id: str) -> None:
    """The target was busy and the proxy queued the message; it is delivered on a later heartbeat."""
    _set_status(source_id=source_id, delegation_id=delegation_id, status="queued")
    _result_row(source_id=source_id, target_id=target_id, status="queued", summary="Delegation queued (target busy)",
                response_body={"delegation_id": delegation_id, "queued": True})
    emit("DELEGATION_STATUS", source_id, {"delegation_id": delegation_id, "target_id": target_id, "status": "queued"})


@transaction.atomic
def delegation_complete(*, source_id: str, target_id: str, delegation_id: str, text: str) -> None:
    _result_row(source_id=source_id, target_id=target_id, status="completed", summary=_completed_summary(text),
                response_body={"text": text, "delegation_id": delegation_id})
    _set_status(source_id=source_id, delegation_id=delegation_id, status="completed")
    emit("DELEGATION_COMPLETE", source_id, {
        "delegation_id": delegation_id, "target_id": target_id,
        "response_preview": truncate(text, RESPONSE_PREVIEW_CHARS),
    })


# --- Reading the proxy's answer ------------------------------------------------------------------------

def _first_text(parts) -> str | None:
    if not isinstance(parts, list):
        return None
    for part in parts:
        if isinstance(part, dict) and part.get("kind") == "text" and isinstance(part.get("text"), str) and part["text"]:
            return part["text"]
    return None


def response_text(body: bytes) -> str:
    """``result.parts`` text, else the first text part of ``result.artifacts``, else the raw body."""
    raw = body.decode("utf-8", errors="replace")
    try:
        result = json.loads(raw).get("result")
    except (ValueError, AttributeError):
        return raw
    if isinstance(result, dict):
        text = _first_text(result.get("parts"))
        if text is not None:
            return text
        for artifact in result.get("artifacts") or []:
            text = _first_text(artifact.get("parts")) if isinstance(artifact, dict) else None
            if text is not None:
                return text
    return raw


def proxy_error(result) -> str:
    """The ``error`` string of a failed proxy answer (``HTTP <status>`` when it has none)."""
    try:
        error = json.loads(result.body).get("error")
    except (ValueError, AttributeError, TypeError):
        error = None
    return error if isinstance(error, str) and error else f"HTTP {result.status}"


def is_transient(result) -> bool:
    """Worth the one retry: the agent was unreachable (502) or its container is restarting (503)."""
    return result.status == 502 or (result.status == 503 and bool(result.restarting))


# --- Celery task ----------------------------------------------------------------------------------------

@shared_task(bind=True, max_retries=1, soft_time_limit=DELEGATION_TIME_LIMIT_SECONDS, ignore_result=True)
def execute_delegation(self, source_id: str, target_id: str, delegation_id: str, task: str,
                       traceparent: str | None = None) -> str:
    """Deliver a delegation and record its outcome; returns the final status (for logs/tests).

    Each attempt is an ``a2a.delegate`` span (the child of the delegating request's
    ``traceparent`` when it had one) around the proxy's ``a2a.proxy`` span.
    """
    span = otel.start_span("a2a.delegate", kind=otel.SpanKind.PRODUCER, traceparent=traceparent, attributes={
        "workspace.id": target_id, "a2a.caller_id": source_id, "a2a.delegation_id": delegation_id,
        "a2a.method": "message/send", "a2a.attempt": self.request.retries + 1,
    })
    try:
        status = _deliver(self, source_id, target_id, delegation_id, task, otel.traceparent_of(span) or traceparent)
        span.set_attribute("a2a.outcome", status)
        if status == "failed":
            span.set_status(otel.Status(otel.StatusCode.ERROR, "delegation failed"))
        return status
    except Retry:
        span.set_attribute("a2a.outcome", "retry")
        raise
    except Exception as exc:
        span.record_exception(exc)
        span.set_status(otel.Status(otel.StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        span.end()


def _deliver(self, source_id: str, target_id: str, delegation_id: str, task: str, traceparent: str | None) -> str:
    if self.request.retries == 0:
        delegation_mark_dispatched(source_id=source_id, target_id=target_id, delegation_id=delegation_id)
    try:
        result = proxy_a2a_sync(
            target_id=target_id, caller_id=source_id, body=a2a_message(delegation_id=delegation_id, task=task),
            traceparent=traceparent,
        )
    except Exception as exc:  # noqa: BLE001 - any failure of the send fails the delegation, visibly
        log.exception("delegation %s: sending to %s failed", delegation_id, target_id)
        delegation_fail(source_id=source_id, target_id=target_id, delegation_id=delegation_id,
                        error=str(exc) or repr(exc))
        return "failed"

    if is_transient(result) and self.request.retries < self.max_retries:
        log.info("delegation %s: target %s answered %s, retrying in %ss", delegation_id, target_id, result.status,
                 settings.DELEGATION_RETRY_DELAY_SECONDS)
        raise self.retry(countdown=settings.DELEGATION_RETRY_DELAY_SECONDS)
    if result.status == 202 and result.queued:
        delegation_queue(source_id=source_id, target_id=target_id, delegation_id=delegation_id)
        return "queued"
    if result.status >= 300:
        delegation_fail(source_id=source_id, target_id=target_id, delegation_id=delegation_id,
                        error=proxy_error(result))
        return "failed"
    delegation_complete(source_id=source_id, target_id=target_id, delegation_id=delegation_id,
                        text=response_text(result.body))
    return "completed"
