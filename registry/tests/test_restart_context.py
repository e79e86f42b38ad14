"""The restart-context briefing (registry/restart_context.py, spec §6.2): what a restarted agent is
told, through the real proxy to a real loopback agent, and when nothing is sent."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from activity.models import ActivityLog
from molecule_site.tests.backends import use_backend
from registry import proxy, restart_context
from registry.tests.a2a_server import a2a_server  # noqa: F401 - fixture
from secrets_app.crypto import encrypt
from secrets_app.models import GlobalSecret, WorkspaceSecret
from workspaces import provisioning
from workspaces.models import Workspace, WorkspaceStatus
from workspaces.provisioners.base import Provisioner

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]


@pytest.fixture(autouse=True, scope="module")
def _close_proxy_db_threads():
    yield
    proxy.close_db_connections()


@pytest.fixture(autouse=True)
def _settings(settings, a2a_server):
    settings.A2A_ALLOW_PRIVATE_TARGETS = True  # the agent is on loopback
    settings.SAAS_MODE = False
    settings.RESTART_CONTEXT_WAIT_SECONDS = 2
    a2a_server.requests.clear()
    return settings


def secret(model, key, **fields):
    stored, version = encrypt("value-that-must-not-travel")
    model.objects.create(key=key, encrypted_value=stored, encryption_version=version, **fields)


def briefing(a2a_server) -> dict:
    request, = a2a_server.requests
    return request["json"]


def test_the_briefing_lists_the_restart_the_previous_session_the_env_keys_and_what_happened(a2a_server):
    workspace = Workspace.objects.create(name="PM", status=WorkspaceStatus.ONLINE, url=a2a_server.url("echo"))
    secret(WorkspaceSecret, "ZED_TOKEN", workspace=workspace)
    secret(WorkspaceSecret, "OPENAI_API_KEY", workspace=workspace)
    secret(GlobalSecret, "OPENAI_API_KEY")
    secret(GlobalSecret, "ANTHROPIC_API_KEY")
    ActivityLog.objects.create(workspace=workspace, activity_type="a2a_receive", summary="message/send → PM",
                               request_body={"params": {"message": {"parts": [{"kind": "text", "text": "ship  v2\n now"}]}}})
    result = restart_context.send_restart_context.apply(args=[str(workspace.id)], kwargs={
        "reason": provisioning.REASON_OFFLINE, "restarted_at": "2026-12-03T10:00:00Z",
        "previous_session_at": "2026-12-03T09:59:30+00:00", "last_error": "model quota exceeded",
    }).get()
    assert result == "sent"
    request = briefing(a2a_server)
    assert request["method"] == "message/send" and request["jsonrpc"] == "2.0"
    message = request["params"]["message"]
    assert message["metadata"] == {"source": "platform", "kind": "restart_context", "layer": 1, "restart_context": True}
    assert message["messageId"].startswith("restart-context-")
    text = message["parts"][0]["text"]
    assert text.splitlines()[:7] == [
        "[Platform] Your workspace was restarted.",
        "- Restart time: 2026-12-03T10:00:00Z",
        "- Previous session: 2026-12-03T09:59:30Z (its last heartbeat)",
        f"- What happened: {provisioning.REASON_OFFLINE}",
        "- Last task: ship v2 now",
        "- Last error: model quota exceeded",
        "- Environment keys available: ANTHROPIC_API_KEY, OPENAI_API_KEY, ZED_TOKEN",
    ]
    assert "value-that-must-not-travel" not in text
    logged = ActivityLog.objects.filter(workspace=workspace).latest("created_at")
    assert logged.source_id is None and logged.status == "ok"  # the system caller is no workspace


def test_the_task_in_progress_wins_over_the_last_message(a2a_server):
    workspace = Workspace.objects.create(name="PM", status=WorkspaceStatus.ONLINE, url=a2a_server.url("echo"))
    restart_context.send_restart_context.apply(args=[str(workspace.id)], kwargs={
        "reason": "r", "restarted_at": "t", "current_task": "drafting the plan"}).get()
    text = briefing(a2a_server)["params"]["message"]["parts"][0]["text"]
    assert "- Last task: drafting the plan" in text and "- Previous session: none recorded" in text
    assert "- Environment keys available: none" in text and "- Last error: none" in text


def test_it_waits_for_the_runtime_to_come_online(a2a_server):
    workspace = Workspace.objects.create(name="PM", status=WorkspaceStatus.PROVISIONING, url=a2a_server.url("echo"))

    def register_later():
        time.sleep(0.8)
        Workspace.objects.filter(pk=workspace.pk).update(status=WorkspaceStatus.ONLINE)

    thread = threading.Thread(target=register_later)
    thread.start()
    started = time.monotonic()
    assert restart_context.send_restart_context.apply(args=[str(workspace.id)],
                                                      kwargs={"reason": "r", "restarted_at": "t"}).get() == "sent"
    thread.join()
    assert time.monotonic() - started >= 0.8
    assert len(a2a_server.requests) == 1


@pytest.mark.parametrize("status", [WorkspaceStatus.PROVISIONING, WorkspaceStatus.FAILED, WorkspaceStatus.REMOVED])
def test_nothing_is_sent_to_a_workspace_that_does_not_come_online(a2a_server, settings, status):
    settings.RESTART_CONTEXT_WAIT_SECONDS = 0
    workspace = Workspace.objects.create(name="PM", status=status, url=a2a_server.url("echo"))
    assert restart_context.send_restart_context.apply(args=[str(workspace.id)],
                                                      kwargs={"reason": "r", "restarted_at": "t"}).get() == "not online"
    assert a2a_server.requests == []


def test_an_agent_that_refuses_is_reported(a2a_server):
    workspace = Workspace.objects.create(name="PM", status=WorkspaceStatus.ONLINE, url=a2a_server.url("boom"))
    assert restart_context.send_restart_context.apply(args=[str(workspace.id)],
                                                      kwargs={"reason": "r", "restarted_at": "t"}).get() == "refused 500"


class _Backend(Provisioner):
    name = "recording"
    available = True
    runs_local_runtimes = True

    def start(self, workspace, *, launch):
        pass

    def stop(self, workspace):
        pass

    def provisioned_workspace_ids(self):
        return {str(w) for w in Workspace.objects.values_list("id", flat=True)}


def test_every_restart_path_queues_one_briefing_with_the_previous_session(monkeypatch):
    use_backend(monkeypatch, _Backend())
    queued = []
    monkeypatch.setattr(restart_context.send_restart_context, "delay",
                        lambda workspace_id, **kwargs: queued.append((workspace_id, kwargs)))
    beat = timezone.now() - timedelta(minutes=3)
    workspace = Workspace.objects.create(name="PM", status=WorkspaceStatus.OFFLINE, runtime="echo",
                                         last_heartbeat_at=beat, last_sample_error="boom", current_task="task")
    assert provisioning.restart_workspace.apply(args=[str(workspace.id)]).get() == "restarted"
    (workspace_id, kwargs), = queued
    assert workspace_id == str(workspace.id)
    assert kwargs["reason"] == provisioning.REASON_OFFLINE
    assert kwargs["previous_session_at"] == beat.isoformat()
    assert (kwargs["current_task"], kwargs["last_error"]) == ("task", "boom")

    queued.clear()
    Workspace.objects.filter(pk=workspace.pk).update(status=WorkspaceStatus.PROVISIONING)
    provisioning.provision_workspace.apply(args=[str(workspace.id)]).get()  # a first start: no briefing
    assert queued == []
    Workspace.objects.filter(pk=workspace.pk).update(status=WorkspaceStatus.PROVISIONING)
    provisioning.provision_workspace.apply(args=[str(workspace.id)], kwargs={"reason": provisioning.REASON_WAKE}).get()
    assert [kwargs["reason"] for _, kwargs in queued] == [provisioning.REASON_WAKE]

    queued.clear()
    Workspace.objects.filter(pk=workspace.pk).update(status=WorkspaceStatus.PAUSED)
    assert provisioning.restart_workspace.apply(args=[str(workspace.id)]).get() == "skipped"
    assert queued == []
