"""The restart-context briefing (spec §6.2, §19): after the platform restarted a workspace's
runtime — RestartByID (the liveness and health sweeps, a secret change, a runtime the proxy found
gone), a restart request, a wake from hibernation — it tells the new session what happened.

``workspaces.provisioning`` sends ``runtime_restarted`` from the task that started the runtime;
:func:`queue_restart_context` (connected in ``registry.apps``) queues :func:`send_restart_context`,
a Celery task, never work in a request. The task waits up to ``RESTART_CONTEXT_WAIT_SECONDS``
(polling every 500 ms) for the workspace to be ``online``, then sends one A2A ``message/send``
through the platform's own proxy (``proxy_a2a_sync``) as caller ``system:restart-context``, with
metadata ``{source:"platform", kind:"restart_context", layer:1, restart_context:true}``. Its text
lists the restart time, the previous session's time (the last heartbeat before the restart), the
sorted names of the env keys the runtime was given (global + workspace secrets; never values),
what happened, the last task and the last error.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from activity.models import ActivityLog
from molecule_site.wire import rfc3339
from registry.proxy import proxy_a2a_sync
from secrets_app.selectors import workspace_secret_listing
from workspaces.models import Workspace, WorkspaceStatus

log = logging.getLogger(__name__)

CALLER_ID = "system:restart-context"
METADATA = {"source": "platform", "kind": "restart_context", "layer": 1, "restart_context": True}
POLL_SECONDS = 0.5
LAST_TASK_MAX = 300
LAST_ERROR_MAX = 500


def queue_restart_context(sender=None, *, workspace_id, reason, previous_session_at=None, current_task="",
                          last_error="", **_kwargs) -> None:
    """``runtime_restarted`` receiver: queue the briefing once the current transaction commits."""
    restarted_at = rfc3339(timezone.now())
    transaction.on_commit(lambda: send_restart_context.delay(
        str(workspace_id), reason=reason, restarted_at=restarted_at, previous_session_at=previous_session_at,
        current_task=current_task, last_error=last_error,
    ))


def _last_task(workspace_id, current_task: str) -> str:
    """The task the runtime was on when it stopped, else the last A2A message it received."""
    if current_task:
        return current_task[:LAST_TASK_MAX]
    row = (ActivityLog.objects.filter(workspace_id=workspace_id, activity_type="a2a_receive")
           .exclude(request_body__isnull=True).order_by("-created_at").values("request_body", "summary").first())
    if row is None:
        return ""
    try:
        parts = row["request_body"]["params"]["message"]["parts"]
        text = " ".join(p.get("text", "") for p in parts if isinstance(p, dict)).strip()
    except (KeyError, TypeError, AttributeError):
        text = ""
    return " ".join((text or row["summary"] or "").split())[:LAST_TASK_MAX]


def restart_context_text(*, restarted_at: str, previous_session_at: str | None, env_keys: list[str], reason: str,
                         last_task: str, last_error: str) -> str:
    lines = [
        "[Platform] Your workspace was restarted.",
        f"- Restart time: {restarted_at}",
        f"- Previous session: {previous_session_at or 'none recorded'} (its last heartbeat)",
        f"- What happened: {reason}",
        f"- Last task: {last_task or 'none recorded'}",
        f"- Last error: {last_error[:LAST_ERROR_MAX] if last_error else 'none'}",
        f"- Environment keys available: {', '.join(env_keys) if env_keys else 'none'}",
        "",
        "Anything held only in memory by your previous session is gone; check your memories and "
        "files before you pick up unfinished work.",
    ]
    return "\n".join(lines)


def _wait_online(workspace_id, wait_seconds: float) -> bool:
    deadline = time.monotonic() + wait_seconds
    while True:
        status = Workspace.objects.filter(pk=workspace_id).values_list("status", flat=True).first()
        if status == WorkspaceStatus.ONLINE:
            return True
        if status is None or status == WorkspaceStatus.REMOVED or time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)


@shared_task(name="registry.tasks.send_restart_context")
def send_restart_context(workspace_id: str, *, reason: str, restarted_at: str, previous_session_at: str | None = None,
                         current_task: str = "", last_error: str = "") -> str:
    """Send the briefing; returns ``sent``, ``not online`` or ``refused <status>``."""
    if not _wait_online(workspace_id, settings.RESTART_CONTEXT_WAIT_SECONDS):
        log.info("workspace %s did not come online in time; no restart context sent", workspace_id)
        return "not online"
    previous = parse_datetime(previous_session_at) if previous_session_at else None
    text = restart_context_text(
        restarted_at=restarted_at, previous_session_at=rfc3339(previous) if previous else None,
        env_keys=sorted({item["key"] for item in workspace_secret_listing(uuid.UUID(str(workspace_id)))}),
        reason=reason, last_task=_last_task(workspace_id, current_task), last_error=last_error,
    )
    body = {"method": "message/send", "params": {"message": {
        "role": "user", "messageId": f"restart-context-{uuid.uuid4().hex[:8]}",
        "parts": [{"kind": "text", "text": text}], "metadata": METADATA,
    }}}
    result = proxy_a2a_sync(target_id=str(workspace_id), caller_id=CALLER_ID,
                            body=json.dumps(body).encode())
    if result.status >= 300:
        log.warning("restart context for workspace %s refused: %s", workspace_id, result.status)
        return f"refused {result.status}"
    return "sent"
