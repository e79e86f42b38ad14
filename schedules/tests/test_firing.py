"""``schedules.firing`` and ``schedules.tasks``: the beat sweep against a real A2A agent on loopback.

Clocks are moved by writing ``next_fire_at`` / ``defer_until`` into the past, never by sleeping.
The sweep task runs with Celery in eager mode, so the run tasks it hands out run in the test's
process, through the real proxy, to the loopback agent (``registry/tests/a2a_server.py``).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from activity.models import ActivityLog, StructureEvent
from molecule_site.celery import app
from registry import proxy
from registry.redis_keys import url_key
from registry.tests.a2a_server import a2a_server  # noqa: F401 - fixture
from schedules import firing, services, tasks
from schedules.inputs import ScheduleInput
from schedules.models import ScheduleStatus, WorkspaceSchedule
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]


@pytest.fixture(autouse=True, scope="module")
def _close_proxy_db_threads():
    yield
    proxy.close_db_connections()


@pytest.fixture(autouse=True)
def _settings(settings, a2a_server):
    settings.A2A_ALLOW_PRIVATE_TARGETS = True  # the agent is on loopback
    settings.A2A_IDLE_TIMEOUT_SECONDS = 5
    settings.DEV_MODE = False
    settings.ADMIN_TOKEN = "schedules-tests-admin"
    a2a_server.requests.clear()
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


# A slot far away, so a deferral's 10 s step is never cut short by the next slot (which it
# would be, by design, a few seconds before a */5 boundary).
YEARLY = "0 12 1 1 *"


def make_schedule(a2a_server, behaviour="usage", *, status=WorkspaceStatus.ONLINE, cron="*/5 * * * *", **workspace):
    target = Workspace.objects.create(name="PM", status=status, url=a2a_server.url(behaviour) if behaviour else "",
                                      **workspace)
    schedule = services.schedule_create(
        workspace_id=target.id, source="operator",
        fields=ScheduleInput(name="standup", cron_expr=cron, timezone="Europe/Paris",
                                      prompt="Post today's plan."),
    )
    return target, schedule


def make_due(schedule, *, seconds_ago=1, **extra):
    WorkspaceSchedule.objects.filter(pk=schedule.pk).update(
        next_fire_at=timezone.now() - timedelta(seconds=seconds_ago), **extra)


def runs(workspace):
    return list(ActivityLog.objects.filter(workspace=workspace, activity_type="cron_run").order_by("created_at"))


def events(kind):
    return list(StructureEvent.objects.filter(event_type=kind).order_by("created_at"))


def fresh(schedule):
    return WorkspaceSchedule.objects.get(pk=schedule.pk)


# --- the sweep and a run --------------------------------------------------------------------------

def test_a_due_schedule_fires_within_one_sweep_as_a_message_send_from_system_cron(a2a_server):
    target, schedule = make_schedule(a2a_server)
    assert tasks.sweep_schedules() == 0  # not due yet
    assert a2a_server.requests == []
    make_due(schedule)

    assert tasks.sweep_schedules() == 1

    [request] = a2a_server.requests
    message = request["json"]["params"]["message"]
    assert request["json"]["method"] == "message/send"
    assert message["parts"] == [{"kind": "text", "text": "Post today's plan."}]
    assert message["metadata"]["schedule_id"] == str(schedule.id)
    row = fresh(schedule)
    assert (row.last_status, row.status, row.run_count, row.consecutive_empty) == ("ok", ScheduleStatus.OK, 1, 0)
    assert row.next_fire_at > timezone.now() and row.next_fire_at.minute % 5 == 0 and row.next_fire_at.second == 0
    [run] = runs(target)
    assert (run.method, run.status, run.source_id) == ("cron", "ok", None)
    assert run.request_body["schedule_id"] == str(schedule.id)
    assert run.response_body == {"reply_preview": "ok"}
    assert run.duration_ms is not None
    [executed] = events("CRON_EXECUTED")
    assert executed.payload["schedule_id"] == str(schedule.id)
    assert executed.payload["status"] == "ok"
    # the proxy logged the exchange on the target as for any caller (system callers have no source)
    assert ActivityLog.objects.filter(workspace=target, activity_type="a2a_receive", source_id=None).count() == 1
    # not due again until the next slot
    assert tasks.sweep_schedules() == 0
    assert len(a2a_server.requests) == 1


def test_disabled_schedules_are_not_swept(a2a_server):
    _, schedule = make_schedule(a2a_server)
    make_due(schedule, enabled=False)
    assert tasks.sweep_schedules() == 0
    assert a2a_server.requests == []


def test_two_concurrent_sweepers_fire_a_due_run_exactly_once(a2a_server):
    target, schedule = make_schedule(a2a_server)
    make_due(schedule)
    barrier = threading.Barrier(2)
    claimed, errors = [], []

    def sweeper():
        try:
            barrier.wait(timeout=10)
            claimed.append(tasks.sweep_schedules())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(claimed) == [0, 1]
    assert len(a2a_server.requests) == 1
    assert len(runs(target)) == 1
    assert fresh(schedule).run_count == 1


def test_the_claim_is_conditional_on_the_deadline_it_read(a2a_server):
    _, schedule = make_schedule(a2a_server)
    make_due(schedule)
    first = firing.schedules_claim_due()
    assert [claim.schedule_id for claim in first] == [str(schedule.id)]
    assert firing.schedules_claim_due() == []  # the deadline moved: nothing left to claim


def test_a_run_edited_after_its_claim_is_not_fired(a2a_server):
    _, schedule = make_schedule(a2a_server)
    make_due(schedule)
    [claim] = firing.schedules_claim_due()
    services.schedule_update(schedule=schedule, fields=ScheduleInput(cron_expr="0 12 * * *"))
    assert firing.schedule_fire(schedule_id=claim.schedule_id, claimed_next=claim.next_fire_at) == "superseded"
    assert a2a_server.requests == []


# --- capacity deferral and CRON_SKIPPED --------------------------------------------------------------

def test_a_busy_target_defers_the_run_in_10_second_steps_then_skips_it_after_2_minutes(a2a_server):
    target, schedule = make_schedule(a2a_server, active_tasks=1, max_concurrent_tasks=1, cron=YEARLY)
    make_due(schedule)
    before = timezone.now()

    tasks.sweep_schedules()

    row = fresh(schedule)
    assert a2a_server.requests == []
    assert before + timedelta(seconds=9) < row.next_fire_at <= timezone.now() + timedelta(seconds=10)
    assert before + timedelta(seconds=119) < row.defer_until <= timezone.now() + timedelta(seconds=120)
    assert runs(target) == [] and events("CRON_SKIPPED") == []
    deadline = row.defer_until

    # 10 s later, still busy: deferred again, same deadline
    make_due(schedule)
    tasks.sweep_schedules()
    row = fresh(schedule)
    assert row.defer_until == deadline and row.next_fire_at > timezone.now()
    assert a2a_server.requests == []

    # past the deferral window: skipped
    make_due(schedule, defer_until=timezone.now() - timedelta(seconds=1))
    tasks.sweep_schedules()

    row = fresh(schedule)
    assert a2a_server.requests == []
    assert (row.last_status, row.defer_until, row.run_count) == ("skipped", None, 0)
    assert "workspace busy" in row.last_error
    assert row.next_fire_at > timezone.now() and row.next_fire_at.minute % 5 == 0
    [run] = runs(target)
    assert (run.status, run.method) == ("skipped", "cron")
    [skipped] = events("CRON_SKIPPED")
    assert skipped.payload["schedule_id"] == str(schedule.id)
    assert skipped.payload["schedule_name"] == "standup"
    assert "busy" in skipped.payload["reason"]


def test_a_deferred_run_fires_once_the_target_has_capacity(a2a_server):
    target, schedule = make_schedule(a2a_server, active_tasks=2, max_concurrent_tasks=2, cron=YEARLY)
    make_due(schedule)
    tasks.sweep_schedules()
    assert fresh(schedule).defer_until is not None

    Workspace.objects.filter(pk=target.pk).update(active_tasks=1)
    make_due(schedule)
    tasks.sweep_schedules()

    row = fresh(schedule)
    assert len(a2a_server.requests) == 1
    assert (row.last_status, row.defer_until) == ("ok", None)
    assert events("CRON_SKIPPED") == []


def test_a_hibernated_target_is_woken_by_the_proxy_and_the_run_waits_for_it(a2a_server):
    target, schedule = make_schedule(a2a_server, behaviour=None, status=WorkspaceStatus.HIBERNATED)
    make_due(schedule)
    assert firing.schedule_fire(schedule_id=schedule.id, claimed_next=fresh(schedule).next_fire_at) == "deferred"
    row = fresh(schedule)
    assert row.defer_until is not None and runs(target) == []

    # it came back online: the deferred run goes out
    Workspace.objects.filter(pk=target.pk).update(status=WorkspaceStatus.ONLINE, url=a2a_server.url("usage"))
    make_due(schedule)
    tasks.sweep_schedules()
    assert len(a2a_server.requests) == 1
    assert fresh(schedule).last_status == "ok"


def test_a_paused_target_skips_the_run_at_once(a2a_server):
    target, schedule = make_schedule(a2a_server, status=WorkspaceStatus.PAUSED)
    make_due(schedule)
    tasks.sweep_schedules()
    assert a2a_server.requests == []
    assert fresh(schedule).last_status == "skipped"
    assert events("CRON_SKIPPED")[0].payload["reason"] == "workspace paused"


def test_a_removed_target_disables_its_schedules(a2a_server):
    target, schedule = make_schedule(a2a_server, status=WorkspaceStatus.REMOVED)
    make_due(schedule)
    tasks.sweep_schedules()
    row = fresh(schedule)
    assert (row.enabled, row.next_fire_at) == (False, None)
    assert a2a_server.requests == []


# --- replies ---------------------------------------------------------------------------------------------

def test_three_empty_replies_in_a_row_make_the_schedule_stale_and_a_real_reply_heals_it(a2a_server, redis_client):
    target, schedule = make_schedule(a2a_server, behaviour="empty")
    for expected in (1, 2):
        make_due(schedule)
        tasks.sweep_schedules()
        row = fresh(schedule)
        assert (row.consecutive_empty, row.status, row.last_status) == (expected, ScheduleStatus.OK, "ok")
    assert events("SCHEDULE_STALE") == []

    make_due(schedule)
    tasks.sweep_schedules()

    row = fresh(schedule)
    assert (row.consecutive_empty, row.status, row.last_status) == (3, ScheduleStatus.STALE, "stale")
    assert [run.status for run in runs(target)] == ["ok", "ok", "stale"]
    [stale] = events("SCHEDULE_STALE")
    assert stale.payload == {"schedule_id": str(schedule.id), "schedule_name": "standup", "consecutive_empty": 3}
    assert events("CRON_EXECUTED")[-1].payload["status"] == "stale"

    # a fourth empty reply keeps it stale without announcing it again
    make_due(schedule)
    tasks.sweep_schedules()
    assert fresh(schedule).consecutive_empty == 4 and len(events("SCHEDULE_STALE")) == 1

    Workspace.objects.filter(pk=target.pk).update(url=a2a_server.url("usage"))
    redis_client.delete(url_key(target.id))
    make_due(schedule)
    tasks.sweep_schedules()
    row = fresh(schedule)
    assert (row.consecutive_empty, row.status, row.last_status) == (0, ScheduleStatus.OK, "ok")


def test_an_agent_error_is_an_error_run(a2a_server):
    target, schedule = make_schedule(a2a_server, behaviour="boom")
    make_due(schedule)
    tasks.sweep_schedules()
    row = fresh(schedule)
    assert (row.last_status, row.last_error, row.status) == ("error", "boom", ScheduleStatus.ERROR)
    [run] = runs(target)
    assert (run.status, run.error_detail) == ("error", "boom")
    assert events("CRON_EXECUTED")[0].payload["error"] == "boom"


def test_a_manual_run_fires_whatever_the_deadline_and_leaves_it(a2a_server):
    target, schedule = make_schedule(a2a_server)
    deadline = fresh(schedule).next_fire_at
    assert firing.schedule_fire(schedule_id=schedule.id, claimed_next=None, manual=True) == "ok"
    assert len(a2a_server.requests) == 1
    row = fresh(schedule)
    assert row.next_fire_at == deadline and row.run_count == 1
    assert runs(target)[0].request_body["manual"] is True


@pytest.mark.parametrize("body, text", [
    (b'{"result":{"kind":"message","parts":[{"kind":"text","text":"done"}]}}', "done"),
    (b'{"result":{"kind":"task","artifacts":[{"parts":[{"kind":"text","text":"report"}]}]}}', "report"),
    (b'{"result":{"kind":"task","status":{"message":{"parts":[{"type":"text","text":"ok"}]}}}}', "ok"),
    (b'{"result":{"kind":"message","parts":[{"kind":"text","text":"  "}]}}', ""),
    (b'{"result":{"kind":"message","parts":[]}}', ""),
    (b'{"result":null}', ""),
    (b'{"result":"plain"}', "plain"),
    (b"not json", "not json"),
])
def test_reply_text_reads_every_reply_shape(body, text):
    assert firing.reply_text(body) == text
