"""The busy-target A2A queue (spec §8.4 "Queue drain", §19): enqueue, depth, drain, scheduling."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.db import connection, transaction
from django.utils import timezone

from activity.models import ActivityLog
from registry import a2a_drain, proxy
from registry.a2a_drain import drain_one, schedule_drain
from registry.a2a_queue import claim_next, enqueue, queue_depth, queued_flag_key
from registry.models import A2AQueueItem
from registry.tests.a2a_server import a2a_server  # noqa: F401 - fixture
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]


@pytest.fixture(autouse=True, scope="module")
def _close_proxy_db_threads():
    """The proxy's DB threads keep their connections: close them before the test DB is dropped."""
    yield
    proxy.close_db_connections()


@pytest.fixture(autouse=True)
def _proxy_settings(settings, a2a_server):
    settings.A2A_ALLOW_PRIVATE_TARGETS = True
    settings.A2A_IDLE_TIMEOUT_SECONDS = 1
    a2a_server.requests.clear()


@pytest.fixture
def target(a2a_server):
    return Workspace.objects.create(name="QA", status=WorkspaceStatus.ONLINE, url=a2a_server.url("echo"))


def request_body(text="hi", message_id=None) -> dict:
    return {"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": "message/send",
            "params": {"message": {"role": "user", "messageId": message_id or str(uuid.uuid4()),
                                   "parts": [{"kind": "text", "text": text}]}}}


def queued(workspace, *, text="hi", priority=50, age_seconds=0, caller_id=None) -> A2AQueueItem:
    item = enqueue(workspace_id=workspace.id, caller_id=caller_id, body=request_body(text), priority=priority)
    if age_seconds:
        A2AQueueItem.objects.filter(pk=item.pk).update(created_at=timezone.now() - timedelta(seconds=age_seconds))
    return item


def point(workspace, url):
    Workspace.objects.filter(pk=workspace.pk).update(url=url)


# --- enqueue / depth ---------------------------------------------------------------------------------

def test_enqueue_counts_and_flags_the_workspace(target, redis_client):
    assert queue_depth(target.id) == 0
    queued(target)
    queued(target)
    assert queue_depth(target.id) == 2
    assert redis_client.exists(queued_flag_key(target.id))


def test_enqueue_with_a_waiting_idempotency_key_returns_the_waiting_item(target):
    first = enqueue(workspace_id=target.id, caller_id=None, body=request_body(), idempotency_key="m-1")
    again = enqueue(workspace_id=target.id, caller_id=None, body=request_body(), idempotency_key="m-1")
    assert again.pk == first.pk
    A2AQueueItem.objects.filter(pk=first.pk).update(status="dispatched")
    third = enqueue(workspace_id=target.id, caller_id=None, body=request_body(), idempotency_key="m-1")
    assert third.pk != first.pk  # only a WAITING twin dedupes (a drain re-queues under the same key)


# --- drain_one -----------------------------------------------------------------------------------------

def test_drain_of_an_empty_queue_returns_none_and_lowers_the_flag(target, redis_client):
    redis_client.set(queued_flag_key(target.id), "1")
    assert drain_one(target.id) is None
    assert not redis_client.exists(queued_flag_key(target.id))
    assert drain_one("not-a-uuid") is None


def test_drain_success_completes_the_item_without_activity(target, a2a_server):
    item = queued(target, text="deliver me")
    assert drain_one(target.id) == str(item.pk)
    item.refresh_from_db()
    assert (item.status, item.attempts, item.last_error) == ("completed", 1, None)
    assert item.dispatched_at is not None and item.completed_at >= item.dispatched_at
    assert a2a_server.requests[0]["json"] == item.body
    assert ActivityLog.objects.count() == 0


def test_drain_takes_highest_priority_then_oldest(target):
    low_old = queued(target, text="low", priority=10, age_seconds=60)
    high_new = queued(target, text="high-new", priority=90)
    high_old = queued(target, text="high-old", priority=90, age_seconds=30)
    assert [drain_one(target.id) for _ in range(3)] == [str(high_old.pk), str(high_new.pk), str(low_old.pk)]


def test_drain_marks_agent_errors_failed(target, a2a_server):
    point(target, a2a_server.url("boom"))
    item = queued(target)
    drain_one(target.id)
    item.refresh_from_db()
    assert (item.status, item.last_error) == ("failed", "500: boom")


def test_drain_marks_unreachable_agent_failed(target):
    point(target, "http://127.0.0.1:9/")  # discard port: nothing listens
    item = queued(target)
    drain_one(target.id)
    item.refresh_from_db()
    assert (item.status, item.last_error) == ("failed", "502: failed to reach workspace agent")


def test_drain_to_a_still_busy_agent_completes_and_requeues(target, a2a_server):
    point(target, a2a_server.url("hang"))
    item = queued(target, caller_id=None)
    drain_one(target.id)
    item.refresh_from_db()
    assert item.status == "completed"
    [again] = A2AQueueItem.objects.filter(status="queued")
    assert again.pk != item.pk
    assert again.body == item.body
    assert again.idempotency_key == item.body["params"]["message"]["messageId"]
    assert ActivityLog.objects.count() == 0


def test_drain_applies_the_hierarchy_to_the_original_caller(target, a2a_server):
    cousin_parent = Workspace.objects.create(name="Ops")
    cousin = Workspace.objects.create(name="SRE", parent=cousin_parent)
    team = Workspace.objects.create(name="PM")
    Workspace.objects.filter(pk=target.pk).update(parent=team)
    item = queued(target, caller_id=str(cousin.id))
    drain_one(target.id)
    item.refresh_from_db()
    assert item.status == "failed"
    assert item.last_error.startswith("403: access denied")
    assert a2a_server.requests == []


def test_claim_skips_rows_another_drainer_holds(target):
    first = queued(target, text="first", age_seconds=10)
    second = queued(target, text="second")
    locked, release = threading.Event(), threading.Event()

    def other_drainer():
        try:
            with transaction.atomic():
                A2AQueueItem.objects.select_for_update().get(pk=first.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=other_drainer)
    holder.start()
    try:
        assert locked.wait(5)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # without SKIP LOCKED this would wait, then fail
        claimed = claim_next(target.id)
    finally:
        release.set()
        holder.join()
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    assert claimed.pk == second.pk
    first.refresh_from_db()
    assert first.status == "queued"


def test_two_concurrent_drains_deliver_different_items(target, a2a_server):
    point(target, a2a_server.url("slow/0.5"))
    items = {str(queued(target, text=f"m{n}").pk) for n in range(2)}
    taken, errors = [], []

    def drain():
        try:
            taken.append(drain_one(target.id))
        except Exception as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []
    assert set(taken) == items
    assert sorted(r["json"]["params"]["message"]["parts"][0]["text"] for r in a2a_server.requests) == ["m0", "m1"]
    assert set(A2AQueueItem.objects.values_list("status", flat=True)) == {"completed"}


# --- schedule_drain / the task ----------------------------------------------------------------------------

@pytest.fixture
def delayed(monkeypatch):
    calls = []
    monkeypatch.setattr(a2a_drain.drain_a2a_queue, "delay", lambda *args: calls.append(args))
    return calls


def test_schedule_drain_queues_the_task(target, delayed):
    queued(target)
    async_to_sync(schedule_drain)(target.id)
    assert delayed == [(str(target.id),)]


def test_schedule_drain_never_raises(target, monkeypatch):
    queued(target)

    def broker_down(*args):
        raise OSError("broker down")

    monkeypatch.setattr(a2a_drain.drain_a2a_queue, "delay", broker_down)
    async_to_sync(schedule_drain)(target.id)  # logged, not raised: a heartbeat must not fail here


def test_the_celery_task_drains_one(target):
    item = queued(target)
    assert a2a_drain.drain_a2a_queue.name == "registry.a2a_drain.drain_a2a_queue"
    assert a2a_drain.drain_a2a_queue.apply(args=[str(target.id)]).get() == str(item.pk)
    item.refresh_from_db()
    assert item.status == "completed"
