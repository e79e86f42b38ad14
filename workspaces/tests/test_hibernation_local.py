"""Hibernation, wake, the restart-context briefing and the initial prompt with REAL local runtimes.

Same harness as test_provisioner_local.py (the live server is the platform, queued Celery tasks
run here with ``.apply()``, echo runtimes). The runtimes import this checkout's
``molecule_runtime`` (PYTHONPATH is let through to them), so what they do is what this branch
ships.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from activity.models import ActivityLog, StructureEvent
from registry import liveness, proxy, restart_context
from workspaces import provisioning, services
from workspaces.models import Workspace, WorkspaceStatus
from workspaces.provisioners import local as local_backend
from workspaces.provisioners.local import read_record
from workspaces.tests.test_provisioner_local import (  # noqa: F401 - the fixture
    a2a_send,
    create,
    gone,
    local,
    pid_of,
    start_online,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)

RUNTIME_SOURCE = Path(__file__).resolve().parents[2] / "runtime"


@pytest.fixture
def runtimes(local, monkeypatch):
    """``local`` whose runtimes run this checkout's runtime, with the briefing task captured too."""
    provisioner, queue = local
    monkeypatch.setattr(local_backend, "HOST_ENV_ALLOWED", (*local_backend.HOST_ENV_ALLOWED, "PYTHONPATH"))
    monkeypatch.setenv("PYTHONPATH", str(RUNTIME_SOURCE))
    queue.capture(restart_context.send_restart_context, monkeypatch)
    return provisioner, queue


def transcript(workspace: Workspace) -> list[dict]:
    """What the echo runtime was told, read from its own /transcript with its token."""
    record = read_record(workspace.id)
    token = (local_backend.workspace_home(workspace.id) / "configs" / ".auth_token").read_text()
    response = httpx.get(f"http://127.0.0.1:{record['port']}/transcript?limit=100",
                         headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["lines"]


def user_lines(workspace: Workspace) -> list[str]:
    return [line["text"] for line in transcript(workspace) if line["role"] == "user"]


def test_hibernate_stops_the_runtime_and_an_a2a_message_wakes_it_with_a_briefing(runtimes, live_server):
    _provisioner, queue = runtimes
    workspace = start_online(queue, secrets={"MY_API_KEY": "sk-test-hibernation-123"})
    pid = pid_of(workspace)

    assert services.workspace_hibernate(workspace_id=workspace.id) == {"status": "hibernated"}
    workspace.refresh_from_db()
    assert (workspace.status, workspace.url) == (WorkspaceStatus.HIBERNATED, "")
    assert gone(pid) and read_record(workspace.id) is None

    reply = a2a_send(live_server.url, workspace, "are you there?")
    assert reply.status_code == 503 and reply.json()["waking"] is True
    assert reply.headers["Retry-After"] == "15"
    assert queue.names() == ["provision_workspace"]
    # the start queues the briefing, which waits for the runtime to come online, then sends
    assert queue.run() == [None, "sent"]
    wait_for(workspace, WorkspaceStatus.ONLINE)

    briefing = user_lines(workspace)[-1]
    assert briefing.startswith("[Platform] Your workspace was restarted.")
    assert "What happened: the workspace was woken from hibernation" in briefing
    assert "MY_API_KEY" in briefing and "sk-test-hibernation-123" not in briefing
    row = ActivityLog.objects.filter(workspace=workspace, activity_type="a2a_receive").latest("created_at")
    metadata = row.request_body["params"]["message"]["metadata"]
    assert metadata == {"source": "platform", "kind": "restart_context", "layer": 1, "restart_context": True}
    assert row.source_id is None  # a system caller is no workspace

    reply = a2a_send(live_server.url, workspace, "are you there?")
    assert reply.status_code == 200, reply.text
    assert reply.json()["result"]["parts"][0]["text"] == "echo: are you there?"
    kinds = list(StructureEvent.objects.filter(workspace_id=workspace.id).order_by("created_at")
                 .values_list("event_type", flat=True))
    assert kinds == ["WORKSPACE_PROVISIONING", "WORKSPACE_ONLINE", "WORKSPACE_HIBERNATED", "WORKSPACE_PROVISIONING",
                     "WORKSPACE_ONLINE"]


def test_the_idle_monitor_hibernates_an_idle_local_workspace(runtimes):
    _provisioner, queue = runtimes
    workspace = start_online(queue)
    pid = pid_of(workspace)
    services.workspace_update(workspace=workspace, changes={"hibernation_idle_minutes": 1})
    assert liveness.hibernation_sweep() == 0  # not idle for a minute yet
    Workspace.objects.filter(pk=workspace.pk).update(hibernation_deadline="2000-01-01T00:00:00Z")
    assert liveness.hibernation_sweep() == 1
    assert wait_for(workspace, WorkspaceStatus.HIBERNATED)
    assert gone(pid)


def test_an_automatic_restart_briefs_the_new_session(runtimes):
    provisioner, queue = runtimes
    workspace = start_online(queue)
    # in-process, so the activity row is written when it returns (the live server's request loop
    # ends with the request, and the detached side effects with it)
    body = {"method": "message/send", "params": {"message": {"role": "user", "parts": [{"kind": "text", "text": "hello"}]}}}
    assert proxy.proxy_a2a_sync(target_id=str(workspace.id), caller_id=None, body=json.dumps(body).encode()).status == 200
    first_pid = pid_of(workspace)
    os.kill(first_pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while str(workspace.id) in provisioner.live_workspace_ids():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    assert liveness.container_health_sweep() == 1
    assert queue.names() == ["restart_workspace"]
    assert queue.run() == ["restarted", "sent"]
    wait_for(workspace, WorkspaceStatus.ONLINE)

    briefing = user_lines(workspace)[-1]
    assert f"What happened: {provisioning.REASON_OFFLINE}" in briefing
    assert "Last task: hello" in briefing, briefing  # the last message it had received
    assert "Previous session: 20" in briefing  # its last heartbeat's time


def test_the_initial_prompt_is_sent_on_the_first_boot_only(runtimes):
    _provisioner, queue = runtimes
    workspace = create(queue, "Starter")
    configs = local_backend.workspace_home(workspace.id) / "configs"
    configs.mkdir(parents=True)
    (configs / "config.yaml").write_text("name: Starter\nruntime: echo\ninitial_prompt: Plan the week\n")
    queue.run()
    wait_for(workspace, WorkspaceStatus.ONLINE)

    def initial_prompts() -> list[str]:
        return [line for line in user_lines(workspace) if line == "Plan the week"]

    deadline = time.monotonic() + 20
    while not initial_prompts():
        assert time.monotonic() < deadline, local_backend.read_log_tail(workspace.id)
        time.sleep(0.2)
    private = local_backend.workspace_home(workspace.id) / "private"
    marker = next(p for p in (configs / ".initial_prompt_done", private / ".initial_prompt_done") if p.exists())
    deadline = time.monotonic() + 10
    while marker.read_text() != "sent":
        assert time.monotonic() < deadline
        time.sleep(0.1)

    services.workspace_restart(workspace_id=workspace.id)
    assert queue.run() == [None, "sent"]  # a restart asked for by the operator is briefed too
    wait_for(workspace, WorkspaceStatus.ONLINE)
    time.sleep(2)  # the new session's readiness poll and send would have happened
    # the snapshot brought the first session's transcript along; nothing new was sent
    assert initial_prompts() == ["Plan the week"]
    assert "initial prompt already sent on an earlier boot" in local_backend.read_log_tail(workspace.id)
