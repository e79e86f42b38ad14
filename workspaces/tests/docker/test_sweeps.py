"""The sweeps of spec §7.4 against real containers: the stale-token sweeper and the health sweep
see what runs in the engine (the rows are this test's, the backend is the real Docker one)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from registry import liveness
from registry.models import WorkspaceAuthToken
from registry.tokens import token_mint
from workspaces.models import WorkspaceStatus
from workspaces.provisioners import get_provisioner
from workspaces.provisioners.docker import SNAPSHOT_SECONDS, container_name
from workspaces.tests.docker.conftest import make_launch, wait_running

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def docker_backend(settings, provisioner):
    """The suite's ``get_provisioner()`` is the Docker backend for these tests."""
    settings.MOLECULE_PROVISIONER = "docker"
    get_provisioner.cache_clear()
    yield get_provisioner()
    get_provisioner.cache_clear()


def _stale_token(workspace) -> WorkspaceAuthToken:
    token, _ = token_mint(workspace=workspace)
    WorkspaceAuthToken.objects.filter(pk=token.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    return token


def test_a_running_container_keeps_its_idle_token_and_a_stopped_one_loses_it(docker_backend, make_workspace, engine):
    running = make_workspace(status=WorkspaceStatus.ONLINE)
    stopped = make_workspace(status=WorkspaceStatus.OFFLINE)
    for workspace in (running, stopped):
        docker_backend.start(workspace, launch=make_launch(workspace))
        wait_running(engine, workspace)
    engine.api.stop(container_name(stopped.id), timeout=5)
    kept, revoked = _stale_token(running), _stale_token(stopped)

    assert liveness.stale_token_sweep() == 1

    kept.refresh_from_db()
    revoked.refresh_from_db()
    assert kept.revoked_at is None and revoked.revoked_at is not None


def test_the_health_sweep_takes_a_workspace_whose_container_died_offline(docker_backend, make_workspace, engine,
                                                                         monkeypatch):
    workspace = make_workspace(status=WorkspaceStatus.ONLINE)
    docker_backend.start(workspace, launch=make_launch(workspace))
    wait_running(engine, workspace)
    assert liveness.container_health_sweep(now=timezone.now()) == 0  # alive: left alone
    engine.api.kill(container_name(workspace.id))
    time.sleep(SNAPSHOT_SECONDS)  # the backend's listing is cached this long (the sweep runs every 15 s)
    queued = []
    monkeypatch.setattr("workspaces.provisioning.restart_workspace.delay", lambda workspace_id, **_options: queued.append(workspace_id))

    assert liveness.container_health_sweep(now=timezone.now()) == 1

    workspace.refresh_from_db()
    assert workspace.status == WorkspaceStatus.OFFLINE
    assert queued == [str(workspace.id)]  # and its restart is asked for
