"""The beat sweeps of ``registry.liveness`` (spec §7.4, DESIGN flow 3).

Every sweep takes ``now`` as a parameter: that is the controllable clock. Tests run with real
transactions (``transaction=True``) because events and side effects happen on commit.

``LocalRuntimes`` and ``DockerStandIn`` stand in for the local-process and Docker backends,
which later issues add: they report a configurable set of live runtimes (or fail to) and record
what they are asked to do.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activity.models import StructureEvent
from molecule_site.tests.backends import use_backend
from registry import liveness
from registry.models import WorkspaceAuthToken
from registry.redis_keys import internal_url_key, liveness_key, url_key
from registry.tokens import token_mint
from workspaces import provisioning
from workspaces.models import Workspace
from workspaces.provisioners.base import ManagedContainer, Provisioner

pytestmark = pytest.mark.django_db(transaction=True)

T0 = timezone.now().replace(microsecond=0)


class LocalRuntimes(Provisioner):
    """Stand-in for a backend that runs runtimes on hosts we control."""

    name = "local"
    available = True
    runs_local_runtimes = True

    def __init__(self, live=(), listing_error: Exception | None = None, provisioned=()):
        self.live = {str(i) for i in live}
        self.listing_error = listing_error
        self.provisioned = {str(i) for i in provisioned}
        self.restarted: list = []
        self.listed = 0

    def start(self, workspace, *, launch):
        return None

    def stop(self, workspace):
        return None

    def live_workspace_ids(self):
        self.listed += 1
        if self.listing_error:
            raise self.listing_error
        return set(self.live)

    def provisioned_workspace_ids(self):
        return set(self.provisioned)


class DockerStandIn(LocalRuntimes):
    """Stand-in for the Docker backend: containers to list, removals recorded."""

    name = "docker"
    has_containers = True
    health_sweep = True

    def __init__(self, live=(), listing_error=None, containers=(), refuse=(), provisioned=()):
        super().__init__(live, listing_error, provisioned)
        self.containers = list(containers)
        self.refuse = set(refuse)
        self.removed: list[str] = []

    def list_managed_containers(self):
        if self.listing_error:
            raise self.listing_error
        return list(self.containers)

    def remove_orphan_container(self, container):
        if container.name in self.refuse:
            raise RuntimeError("conflict: container is being removed")
        self.removed.append(container.name)


class RemoteOnly(LocalRuntimes):
    """A backend that does not run runtimes locally, but records what it is asked."""

    name = "remote"
    runs_local_runtimes = False


@pytest.fixture
def install(monkeypatch):
    def _install(backend: Provisioner) -> Provisioner:
        use_backend(monkeypatch, backend)
        # what request_restarts queues for the restart task, as the ids it was given
        monkeypatch.setattr(provisioning.restart_workspace, "delay",
                            lambda workspace_id, **_options: backend.restarted.append(uuid.UUID(workspace_id)))
        return backend

    return _install


def live_workspace(*, status="online", deadline, runtime="langgraph", name="Dev") -> Workspace:
    workspace = Workspace.objects.create(name=name, status=status, runtime=runtime)
    Workspace.objects.filter(pk=workspace.pk).update(liveness_deadline=deadline)
    return workspace


def events(event_type: str) -> list[StructureEvent]:
    return list(StructureEvent.objects.filter(event_type=event_type).order_by("created_at"))


def status_of(workspace: Workspace) -> str:
    return Workspace.objects.values_list("status", flat=True).get(pk=workspace.pk)


# --- liveness sweep ------------------------------------------------------------------------------------

def test_liveness_sweep_takes_an_expired_online_workspace_offline_with_one_event():
    workspace = live_workspace(deadline=T0 - timedelta(seconds=1))

    assert liveness.liveness_sweep(now=T0) == 1

    workspace.refresh_from_db()
    assert (workspace.status, workspace.updated_at) == ("offline", T0)
    assert [(e.workspace_id, e.payload) for e in events("WORKSPACE_OFFLINE")] == [(workspace.id, {})]
    assert liveness.liveness_sweep(now=T0) == 0  # nothing left: no second event
    assert len(events("WORKSPACE_OFFLINE")) == 1


def test_liveness_sweep_takes_an_expired_degraded_workspace_offline():
    workspace = live_workspace(status="degraded", deadline=T0 - timedelta(seconds=1))
    assert liveness.liveness_sweep(now=T0) == 1
    assert status_of(workspace) == "offline"


def test_a_workspace_whose_deadline_is_in_the_future_stays_online():
    workspace = live_workspace(deadline=T0 + timedelta(seconds=1))
    assert liveness.liveness_sweep(now=T0) == 0
    assert status_of(workspace) == "online"
    assert not StructureEvent.objects.exists()


@pytest.mark.parametrize(
    "status", ["paused", "removed", "failed", "awaiting_agent", "hibernated", "hibernating", "provisioning", "offline"]
)
def test_rows_that_are_not_live_never_go_offline(status):
    workspace = live_workspace(status=status, deadline=T0 - timedelta(hours=1))
    assert liveness.liveness_sweep(now=T0) == 0
    assert status_of(workspace) == status
    assert not StructureEvent.objects.exists()


def test_a_live_row_without_a_deadline_is_left_alone():
    workspace = Workspace.objects.create(name="Dev", status="online")
    assert liveness.liveness_sweep(now=T0) == 0
    assert status_of(workspace) == "online"


def test_offline_is_detected_within_ttl_plus_one_sweep_interval(settings):
    ttl = settings.LIVENESS_TTL_SECONDS
    workspace = live_workspace(deadline=T0 + timedelta(seconds=ttl))  # last heartbeat at T0

    assert liveness.liveness_sweep(now=T0 + timedelta(seconds=ttl - 1)) == 0
    assert status_of(workspace) == "online"
    assert liveness.liveness_sweep(now=T0 + timedelta(seconds=ttl + 1)) == 1
    assert status_of(workspace) == "offline"


def test_beat_ticks_detect_offline_no_later_than_ttl_plus_interval(settings):
    ttl, interval = settings.LIVENESS_TTL_SECONDS, settings.LIVENESS_SWEEP_SECONDS
    workspace = live_workspace(deadline=T0 + timedelta(seconds=ttl))
    tick = T0 + timedelta(seconds=0.3)  # beat's phase is unrelated to the heartbeat's
    while liveness.liveness_sweep(now=tick) == 0:
        tick += timedelta(seconds=interval)
    assert status_of(workspace) == "offline"
    assert T0 + timedelta(seconds=ttl) < tick <= T0 + timedelta(seconds=ttl + interval)


def test_the_sweep_clears_the_redis_keys_of_the_workspaces_it_takes_offline(redis_client):
    gone = live_workspace(deadline=T0 - timedelta(seconds=1))
    alive = live_workspace(deadline=T0 + timedelta(seconds=30))
    for workspace in (gone, alive):
        for key in (liveness_key(workspace.id), url_key(workspace.id), internal_url_key(workspace.id)):
            redis_client.set(key, "x")

    liveness.liveness_sweep(now=T0)

    assert not redis_client.exists(liveness_key(gone.id), url_key(gone.id), internal_url_key(gone.id))
    assert redis_client.exists(liveness_key(alive.id), url_key(alive.id), internal_url_key(alive.id)) == 3


def test_offline_asks_the_owning_provisioner_to_restart_but_never_for_external_runtimes(install):
    owned = live_workspace(deadline=T0 - timedelta(seconds=2))
    external = live_workspace(deadline=T0 - timedelta(seconds=1), runtime="external")
    backend = install(LocalRuntimes(provisioned=[owned.id, external.id]))

    assert liveness.liveness_sweep(now=T0) == 2

    assert backend.restarted == [owned.id]
    assert status_of(external) == "offline"


def test_a_workspace_the_provisioner_never_started_goes_offline_without_a_restart(install):
    registered = live_workspace(deadline=T0 - timedelta(seconds=1), runtime="echo")  # registered by itself
    backend = install(LocalRuntimes())

    assert liveness.liveness_sweep(now=T0) == 1

    assert status_of(registered) == "offline"
    assert [e.workspace_id for e in events("WORKSPACE_OFFLINE")] == [registered.id]
    assert backend.restarted == []


def test_when_the_provisioned_workspaces_cannot_be_listed_they_go_offline_and_none_restarts(install):
    class Unlisting(LocalRuntimes):
        def provisioned_workspace_ids(self):
            raise OSError("MOLECULE_HOME is not readable")

    workspace = live_workspace(deadline=T0 - timedelta(seconds=1))
    backend = install(Unlisting(provisioned=[workspace.id]))
    assert liveness.liveness_sweep(now=T0) == 1
    assert status_of(workspace) == "offline"
    assert backend.restarted == []


def test_a_backend_that_runs_no_local_runtimes_is_not_asked_to_restart(install):
    backend = install(RemoteOnly())
    live_workspace(deadline=T0 - timedelta(seconds=1))
    assert liveness.liveness_sweep(now=T0) == 1
    assert backend.restarted == []


def test_a_heartbeat_between_the_read_and_the_claim_keeps_the_workspace_online(monkeypatch):
    workspace = live_workspace(deadline=T0 - timedelta(seconds=1))
    read = liveness._expired_live_rows

    def read_then_heartbeat(**kwargs):
        rows = read(**kwargs)
        Workspace.objects.filter(pk=workspace.pk).update(liveness_deadline=T0 + timedelta(seconds=60))
        return rows

    monkeypatch.setattr(liveness, "_expired_live_rows", read_then_heartbeat)
    assert liveness.liveness_sweep(now=T0) == 0
    assert status_of(workspace) == "online"
    assert not StructureEvent.objects.exists()


def test_the_sweep_takes_every_expired_row_in_deadline_order_batch_after_batch(install):
    expired = [live_workspace(name=f"W{i}", deadline=T0 - timedelta(seconds=10 - i)) for i in range(5)]
    fresh = live_workspace(name="fresh", deadline=T0 + timedelta(seconds=10))
    backend = install(LocalRuntimes(provisioned=[w.id for w in expired]))

    assert liveness.liveness_sweep(now=T0, batch=2) == 5

    assert backend.restarted == [w.id for w in expired]  # oldest deadline first
    assert status_of(fresh) == "online"
    assert len(events("WORKSPACE_OFFLINE")) == 5


def test_expired_rows_are_read_through_the_partial_index_on_live_rows():
    live_workspace(deadline=T0 - timedelta(seconds=1))
    with CaptureQueriesContext(connection) as captured:
        liveness._expired_live_rows(now=T0, batch=100)
    [query] = captured.captured_queries
    with connection.cursor() as cursor:
        # A tiny table is cheaper to scan; forbid that to see which index the planner can use.
        cursor.execute("SET enable_seqscan = off")
        try:
            cursor.execute("EXPLAIN " + query["sql"])
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_seqscan")
    assert "Index Scan using idx_workspaces_live_deadline" in plan, plan
    assert "Sort" not in plan, plan  # the index gives deadline order


def test_two_concurrent_sweepers_take_each_workspace_offline_exactly_once(monkeypatch):
    expired = [live_workspace(name=f"W{i}", deadline=T0 - timedelta(seconds=i + 1)) for i in range(6)]
    # Both sweepers read the same expired rows before either claims one: the claims race.
    both_have_read = threading.Barrier(2, timeout=10)
    read = liveness._expired_live_rows

    def read_then_wait(**kwargs):
        rows = read(**kwargs)
        if rows:
            both_have_read.wait()
        return rows

    monkeypatch.setattr(liveness, "_expired_live_rows", read_then_wait)
    results: list[int] = []
    errors: list[BaseException] = []

    def sweeper():
        try:
            results.append(liveness.liveness_sweep(now=T0))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sum(results) == len(expired)
    offline_events = events("WORKSPACE_OFFLINE")
    assert sorted(e.workspace_id for e in offline_events) == sorted(w.id for w in expired)
    assert all(status_of(w) == "offline" for w in expired)


# --- provision timeout -----------------------------------------------------------------------------------

def provisioning_row(*, since, runtime="langgraph", status="provisioning") -> Workspace:
    workspace = Workspace.objects.create(name="Dev", status=status, runtime=runtime)
    Workspace.objects.filter(pk=workspace.pk).update(updated_at=since)
    return workspace


def test_provisioning_for_ten_minutes_fails_with_the_spec_message_and_event():
    workspace = provisioning_row(since=T0)

    assert liveness.provision_timeout_sweep(now=T0 + timedelta(minutes=10) - timedelta(seconds=1)) == 0
    assert status_of(workspace) == "provisioning"
    assert liveness.provision_timeout_sweep(now=T0 + timedelta(minutes=10)) == 1

    workspace.refresh_from_db()
    message = (
        "provisioning timed out — container started but never called /registry/register. "
        "Check container logs and network connectivity to the platform."
    )
    assert (workspace.status, workspace.last_sample_error) == ("failed", message)
    assert [e.payload for e in events("WORKSPACE_PROVISION_FAILED")] == [
        {"error": message, "timeout_secs": 600, "runtime": "langgraph", "source": "provision_timeout_sweep"}
    ]


def test_hermes_gets_thirty_minutes_to_register():
    workspace = provisioning_row(since=T0, runtime="hermes")
    assert liveness.provision_timeout_sweep(now=T0 + timedelta(minutes=29)) == 0
    assert liveness.provision_timeout_sweep(now=T0 + timedelta(minutes=30)) == 1
    assert status_of(workspace) == "failed"
    assert events("WORKSPACE_PROVISION_FAILED")[0].payload["timeout_secs"] == 1800


def test_the_provision_timeout_setting_overrides_every_runtime(settings):
    settings.PROVISION_TIMEOUT_SECONDS = 120
    hermes = provisioning_row(since=T0, runtime="hermes")
    other = provisioning_row(since=T0)
    assert liveness.provision_timeout_sweep(now=T0 + timedelta(seconds=119)) == 0
    assert liveness.provision_timeout_sweep(now=T0 + timedelta(seconds=120)) == 2
    assert (status_of(hermes), status_of(other)) == ("failed", "failed")
    assert {e.payload["timeout_secs"] for e in events("WORKSPACE_PROVISION_FAILED")} == {120}


@pytest.mark.parametrize("status", ["online", "offline", "failed", "paused", "removed", "awaiting_agent"])
def test_only_provisioning_rows_time_out(status):
    workspace = provisioning_row(since=T0 - timedelta(days=1), status=status)
    assert liveness.provision_timeout_sweep(now=T0) == 0
    assert status_of(workspace) == status


def test_a_second_sweeper_claiming_the_same_row_emits_nothing():
    workspace = provisioning_row(since=T0 - timedelta(hours=1))
    [(workspace_id, runtime)] = liveness._provisioning_candidates(now=T0)  # both sweepers read it

    assert liveness._fail_provisioning(workspace_id, runtime=runtime, now=T0) is True
    assert liveness._fail_provisioning(workspace_id, runtime=runtime, now=T0) is False
    assert status_of(workspace) == "failed"
    assert len(events("WORKSPACE_PROVISION_FAILED")) == 1


def test_a_workspace_reprovisioned_after_the_read_is_not_failed():
    workspace = provisioning_row(since=T0 - timedelta(hours=1))
    [(workspace_id, runtime)] = liveness._provisioning_candidates(now=T0)
    Workspace.objects.filter(pk=workspace.pk).update(updated_at=T0)  # restarted meanwhile

    assert liveness._fail_provisioning(workspace_id, runtime=runtime, now=T0) is False
    assert status_of(workspace) == "provisioning"
    assert not StructureEvent.objects.exists()


# --- stale tokens without a runtime ----------------------------------------------------------------------

def with_token(*, status="offline", runtime="langgraph", created_ago=timedelta(minutes=10), used_ago=None):
    workspace = Workspace.objects.create(name="Dev", status=status, runtime=runtime)
    token, _ = token_mint(workspace=workspace)
    WorkspaceAuthToken.objects.filter(pk=token.pk).update(
        created_at=T0 - created_ago, last_used_at=None if used_ago is None else T0 - used_ago
    )
    return workspace, token


def is_live(token: WorkspaceAuthToken) -> bool:
    return WorkspaceAuthToken.objects.filter(pk=token.pk, revoked_at__isnull=True).exists()


def test_stale_tokens_of_a_workspace_without_a_live_runtime_are_revoked(install, caplog):
    install(LocalRuntimes(live=[]))  # no runtime is alive: every workspace qualifies
    workspace, token = with_token(used_ago=timedelta(minutes=6))

    with caplog.at_level("INFO", logger="registry.liveness"):
        assert liveness.stale_token_sweep(now=T0) == 1

    assert WorkspaceAuthToken.objects.get(pk=token.pk).revoked_at == T0
    assert str(workspace.id) in caplog.text


def test_a_fresh_token_is_kept(install):
    install(LocalRuntimes())
    _, token = with_token(created_ago=timedelta(minutes=4))
    assert liveness.stale_token_sweep(now=T0) == 0
    assert is_live(token)


def test_an_old_token_used_recently_is_kept(install):
    install(LocalRuntimes())
    _, token = with_token(created_ago=timedelta(days=3), used_ago=timedelta(minutes=1))
    assert liveness.stale_token_sweep(now=T0) == 0
    assert is_live(token)


def test_one_recently_used_token_keeps_every_token_of_the_workspace(install):
    install(LocalRuntimes())
    workspace, stale = with_token()
    fresh, _ = token_mint(workspace=workspace)
    WorkspaceAuthToken.objects.filter(pk=fresh.pk).update(created_at=T0 - timedelta(minutes=1))
    assert liveness.stale_token_sweep(now=T0) == 0
    assert is_live(stale) and is_live(fresh)


def test_a_workspace_with_a_live_process_is_kept(install):
    workspace, token = with_token(status="online")
    install(LocalRuntimes(live=[workspace.id]))
    assert liveness.stale_token_sweep(now=T0) == 0
    assert is_live(token)


def test_an_external_workspace_is_kept(install):
    install(LocalRuntimes())
    _, token = with_token(runtime="external")
    assert liveness.stale_token_sweep(now=T0) == 0
    assert is_live(token)


@pytest.mark.parametrize("status", ["removed", "provisioning"])
def test_removed_and_provisioning_workspaces_are_kept(install, status):
    install(LocalRuntimes())
    _, token = with_token(status=status)
    assert liveness.stale_token_sweep(now=T0) == 0
    assert is_live(token)


def test_already_revoked_tokens_keep_their_revocation_time(install):
    install(LocalRuntimes())
    _, token = with_token()
    WorkspaceAuthToken.objects.filter(pk=token.pk).update(revoked_at=T0 - timedelta(days=1))
    assert liveness.stale_token_sweep(now=T0) == 0
    assert WorkspaceAuthToken.objects.get(pk=token.pk).revoked_at == T0 - timedelta(days=1)


def test_a_token_used_between_the_read_and_the_revoke_is_kept(install):
    install(LocalRuntimes())
    workspace, token = with_token()
    cutoff = T0 - liveness.STALE_TOKEN_AGE
    assert liveness._stale_token_candidates(live_ids=set(), cutoff=cutoff) == [workspace.id]
    WorkspaceAuthToken.objects.filter(pk=token.pk).update(last_used_at=T0)  # the runtime authenticates

    assert liveness._revoke_stale_tokens(workspace.id, cutoff=cutoff, now=T0) == 0
    assert is_live(token)


def test_a_failure_to_list_runtimes_skips_the_whole_cycle(install, caplog):
    install(LocalRuntimes(listing_error=RuntimeError("docker: connection refused")))
    _, token = with_token()
    assert liveness.stale_token_sweep(now=T0) == 0
    assert is_live(token)
    assert "skipping this cycle" in caplog.text


def test_a_database_error_stops_the_pass_and_the_next_cycle_retries(install, monkeypatch, caplog):
    install(LocalRuntimes())
    first_ws, first = with_token(created_ago=timedelta(minutes=20))
    second_ws, second = with_token(created_ago=timedelta(minutes=10))
    attempted: list = []
    revoke = liveness._revoke_stale_tokens

    def failing_once(workspace_id, **kwargs):
        attempted.append(workspace_id)
        if len(attempted) == 1:
            raise DatabaseError("connection lost")
        return revoke(workspace_id, **kwargs)

    monkeypatch.setattr(liveness, "_revoke_stale_tokens", failing_once)
    assert liveness.stale_token_sweep(now=T0) == 0  # returns cleanly
    assert attempted == [first_ws.id]  # the second workspace was not attempted
    assert is_live(first) and is_live(second)
    assert "stopping at workspace" in caplog.text

    assert liveness.stale_token_sweep(now=T0) == 2  # next cycle
    assert not is_live(first) and not is_live(second)


def test_the_stale_token_sweep_is_a_no_op_with_the_none_backend(django_assert_num_queries):
    _, token = with_token()
    with django_assert_num_queries(0):
        assert liveness.stale_token_sweep(now=T0) == 0
    assert is_live(token)


# --- Docker only: orphan containers and container health ----------------------------------------------------

def test_docker_only_sweeps_are_no_ops_with_the_none_backend(django_assert_num_queries):
    workspace = live_workspace(deadline=T0 + timedelta(minutes=1))
    Workspace.objects.create(name="gone", status="removed")
    with django_assert_num_queries(0):
        assert liveness.orphan_container_sweep() == 0
        assert liveness.container_health_sweep(now=T0) == 0
    assert status_of(workspace) == "online"


def test_docker_only_sweeps_are_no_ops_with_another_local_backend(install, django_assert_num_queries):
    backend = install(LocalRuntimes())
    workspace = live_workspace(deadline=T0 + timedelta(minutes=1))
    with django_assert_num_queries(0):
        assert liveness.orphan_container_sweep() == 0
        assert liveness.container_health_sweep(now=T0) == 0
    assert backend.listed == 0
    assert status_of(workspace) == "online"


def id12(workspace: Workspace) -> str:
    return str(workspace.id)[:12]


def test_orphan_sweep_removes_containers_of_removed_and_unknown_workspaces(install):
    removed = Workspace.objects.create(name="gone", status="removed")
    running = Workspace.objects.create(name="here", status="online")
    unknown = uuid.uuid4().hex[:12]
    backend = install(DockerStandIn(containers=[
        ManagedContainer(f"ws-{id12(removed)}", managed=False),  # pass 1: ws-* even unlabelled
        ManagedContainer(f"ws-{id12(running)}", managed=True),
        ManagedContainer(f"ws-{unknown}", managed=True),  # pass 2: labelled, no row at all
        ManagedContainer(f"ws-{uuid.uuid4().hex[:12]}", managed=False),  # unlabelled, no row: not ours
        ManagedContainer("ws-DROP TABLE", managed=True),  # prefixes are hex/dash only
        ManagedContainer("postgres", managed=True),
    ]))

    assert liveness.orphan_container_sweep() == 2
    assert backend.removed == [f"ws-{id12(removed)}", f"ws-{unknown}"]


def test_orphan_sweep_goes_on_after_a_refused_removal_and_skips_a_cycle_it_cannot_list(install):
    first = Workspace.objects.create(name="gone", status="removed")
    second = Workspace.objects.create(name="gone too", status="removed")
    backend = install(DockerStandIn(
        containers=[ManagedContainer(f"ws-{id12(first)}", True), ManagedContainer(f"ws-{id12(second)}", True)],
        refuse={f"ws-{id12(first)}"},
    ))
    assert liveness.orphan_container_sweep() == 1
    assert backend.removed == [f"ws-{id12(second)}"]

    install(DockerStandIn(listing_error=RuntimeError("docker: connection refused")))
    assert liveness.orphan_container_sweep() == 0


def test_health_sweep_takes_a_live_workspace_whose_container_stopped_offline(install, redis_client):
    stopped = live_workspace(deadline=T0 + timedelta(minutes=1), name="stopped")
    running = live_workspace(status="degraded", deadline=T0 + timedelta(minutes=1), name="running")
    external = live_workspace(deadline=T0 + timedelta(minutes=1), runtime="external", name="external")
    starting = Workspace.objects.create(name="starting", status="provisioning")
    registered = live_workspace(deadline=T0 + timedelta(minutes=1), name="registered")  # no container of ours
    redis_client.set(liveness_key(stopped.id), "x")
    backend = install(DockerStandIn(live=[running.id], provisioned=[stopped.id, running.id, external.id, starting.id]))

    assert liveness.container_health_sweep(now=timezone.now()) == 1

    assert [status_of(w) for w in (stopped, running, external, starting, registered)] == [
        "offline", "degraded", "online", "provisioning", "online"
    ]
    assert [e.workspace_id for e in events("WORKSPACE_OFFLINE")] == [stopped.id]
    assert backend.restarted == [stopped.id]
    assert not redis_client.exists(liveness_key(stopped.id))


def test_health_sweep_also_watches_backends_that_ask_for_it_such_as_local_processes(install, redis_client):
    crashed = live_workspace(deadline=T0 + timedelta(minutes=1), name="crashed")
    running = live_workspace(deadline=T0 + timedelta(minutes=1), name="running")

    class LocalProcesses(LocalRuntimes):
        health_sweep = True

    backend = install(LocalProcesses(live=[running.id], provisioned=[crashed.id, running.id]))

    assert liveness.container_health_sweep(now=timezone.now()) == 1

    assert [status_of(w) for w in (crashed, running)] == ["offline", "online"]
    assert [e.workspace_id for e in events("WORKSPACE_OFFLINE")] == [crashed.id]
    assert backend.restarted == [crashed.id]


def test_health_sweep_leaves_a_workspace_written_after_the_listing(install):
    workspace = live_workspace(deadline=T0 + timedelta(minutes=1))  # updated_at: just now, after T0
    install(DockerStandIn(live=[], provisioned=[workspace.id]))
    assert liveness.container_health_sweep(now=T0) == 0
    assert status_of(workspace) == "online"


def test_health_sweep_changes_nothing_when_docker_cannot_list(install):
    workspace = live_workspace(deadline=T0 + timedelta(minutes=1))
    install(DockerStandIn(listing_error=RuntimeError("docker: connection refused")))
    assert liveness.container_health_sweep(now=timezone.now()) == 0
    assert status_of(workspace) == "online"
