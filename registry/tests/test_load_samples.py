"""The load samples heartbeats leave for the canvas's sparklines (``redis_keys.load_key``) and the
selector that reads them for a whole page at once (``selectors.load_samples``)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis

from molecule_site.redis_client import get_redis
from registry import selectors
from registry.redis_keys import LOAD_SAMPLES, LOAD_TTL_SECONDS, clear_workspace_keys, load_key
from registry.tokens import token_mint
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]

ADMIN_TOKEN = "load-samples-admin-token"


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.ADMIN_TOKEN = ADMIN_TOKEN
    settings.DEV_MODE = False


@pytest.fixture
def beat(client, django_capture_on_commit_callbacks):
    def send(workspace, token=None, **fields):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/registry/heartbeat", json.dumps({"workspace_id": str(workspace.id), **fields}),
                content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token or workspace.runtime_token}",
            )
        assert response.status_code == 200, response.content
    return send


def make(name="Dev Lead") -> Workspace:
    workspace = Workspace.objects.create(name=name, status=WorkspaceStatus.ONLINE)
    _, workspace.runtime_token = token_mint(workspace=workspace)
    return workspace


def test_each_heartbeat_adds_its_active_tasks_and_the_selector_reads_them_oldest_first(beat, redis_client):
    workspace = make()
    for tasks in (0, 2, 5, 1):
        beat(workspace, active_tasks=tasks)
    assert selectors.load_samples([workspace.id]) == {str(workspace.id): [0, 2, 5, 1]}
    ttl = redis_client.ttl(load_key(workspace.id))
    assert 0 < ttl <= LOAD_TTL_SECONDS


def test_only_the_newest_samples_are_kept(beat, redis_client):
    workspace = make()
    for tasks in range(LOAD_SAMPLES + 5):
        beat(workspace, active_tasks=tasks)
    assert redis_client.llen(load_key(workspace.id)) == LOAD_SAMPLES
    assert selectors.load_samples([workspace.id])[str(workspace.id)] == list(range(5, LOAD_SAMPLES + 5))


def test_a_beat_for_an_unknown_or_removed_workspace_records_nothing(beat, redis_client):
    removed = make()
    Workspace.objects.filter(pk=removed.id).update(status=WorkspaceStatus.REMOVED)
    beat(removed, token=ADMIN_TOKEN, active_tasks=3)
    unknown = Workspace(id=uuid.uuid4(), name="never saved")
    beat(unknown, token=ADMIN_TOKEN, active_tasks=3)
    assert not redis_client.exists(load_key(removed.id))
    assert not redis_client.exists(load_key(unknown.id))


def test_one_command_reads_every_workspace_and_leaves_out_those_without_samples(beat, redis_client, monkeypatch):
    busy, idle, silent = make("Busy"), make("Idle"), make("Silent")
    beat(busy, active_tasks=4)
    beat(busy, active_tasks=2)
    beat(idle, active_tasks=0)
    commands = []
    real = redis.Redis.execute_command
    monkeypatch.setattr(redis.Redis, "execute_command", lambda self, *args, **kw: commands.append(args[0]) or real(self, *args, **kw))
    samples = selectors.load_samples([busy.id, idle.id, silent.id])
    assert samples == {str(busy.id): [4, 2], str(idle.id): [0]}
    assert commands == ["EVAL"]


def test_samples_older_than_the_window_and_foreign_entries_are_skipped(redis_client):
    workspace_id = uuid.uuid4()
    now = time.time()
    redis_client.rpush(load_key(workspace_id), f"{int(now)}:3", "garbage", f"{int(now - LOAD_TTL_SECONDS - 60)}:9")
    assert selectors.load_samples([workspace_id], now=now) == {str(workspace_id): [3]}


def test_redis_down_reads_as_no_samples(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    get_redis.cache_clear()
    try:
        assert selectors.load_samples([uuid.uuid4()]) == {}
    finally:
        get_redis.cache_clear()


def test_deleting_a_workspace_clears_its_samples(beat, redis_client):
    workspace = make()
    beat(workspace, active_tasks=1)
    clear_workspace_keys([workspace.id])
    assert not redis_client.exists(load_key(workspace.id))
