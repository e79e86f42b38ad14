"""The provisioning service: transitions, the launch it prepares (spec §16), restarts (§6.2).

The backend here is a stand-in adapter of the provisioner port that records what provisioning
hands it; the real backends have their own tests (``test_provisioner_local``, ``tests/docker``).
"""

import pytest
from django.db import transaction

from activity.models import StructureEvent
from molecule_site.tests.backends import use_backend
from registry.models import WorkspaceAuthToken
from registry.tokens import INBOUND_SECRET_ENV, inbound_secret, token_digest, token_mint
from secrets_app import services as secret_services
from secrets_app.models import WorkspaceSecret
from workspaces import provisioning, services
from workspaces.models import Workspace
from workspaces.provisioners import Launch, Provisioner

pytestmark = pytest.mark.django_db(transaction=True)


class RecordingProvisioner(Provisioner):
    """A backend that can start workspaces, recording what it is asked to do."""

    name = "recording"
    available = True

    def __init__(self, fail_with: str | None = None):
        self.started: list[tuple[str, Launch]] = []
        self.stopped: list[str] = []
        self.fail_with = fail_with

    def start(self, workspace, *, launch):
        if self.fail_with:
            raise RuntimeError(self.fail_with)
        self.started.append((str(workspace.id), launch))

    def stop(self, workspace):
        self.stopped.append(str(workspace.id))

    def provisioned_workspace_ids(self):
        return {str(workspace_id) for workspace_id in Workspace.objects.values_list("id", flat=True)}


@pytest.fixture
def provisioner(monkeypatch):
    backend = RecordingProvisioner()
    use_backend(monkeypatch, backend)
    return backend


def test_create_queues_provisioning_on_commit_and_the_task_starts_the_runtime(provisioner, monkeypatch, settings):
    queued: list[str] = []
    monkeypatch.setattr(provisioning.provision_workspace, "delay", lambda workspace_id, restart=False, **_options: queued.append(workspace_id))
    with transaction.atomic():
        body = services.workspace_create(new=services.NewWorkspace(name="Dev"), platform_url="http://p")
        assert queued == []  # nothing leaves the request before commit
    assert queued == [body["id"]]
    assert Workspace.objects.get(pk=body["id"]).status == "provisioning"

    provisioning.provision_workspace.apply(args=[body["id"]])
    [(started_id, launch)] = provisioner.started
    assert started_id == body["id"]
    assert (launch.env["WORKSPACE_ID"], launch.env["PLATFORM_URL"]) == (body["id"], settings.PLATFORM_URL)


def test_a_failing_backend_marks_the_workspace_failed_with_an_event(monkeypatch):
    backend = RecordingProvisioner(fail_with="image not found")
    use_backend(monkeypatch, backend)
    workspace = Workspace.objects.create(name="Dev")
    provisioning.provision_workspace.apply(args=[str(workspace.id)])
    workspace.refresh_from_db()
    assert (workspace.status, workspace.last_sample_error) == ("failed", "workspace start failed: image not found")
    event = StructureEvent.objects.get(event_type="WORKSPACE_PROVISION_FAILED")
    assert event.payload == {"error": "workspace start failed", "detail": "image not found"}


class LocalRuntimesAfterARestart(RecordingProvisioner):
    """A backend that runs local runtimes: it provisioned some workspaces, none is running now."""

    runs_local_runtimes = True

    def __init__(self, provisioned):
        super().__init__()
        self.provisioned = {str(w.id) for w in provisioned}

    def provisioned_workspace_ids(self):
        return set(self.provisioned)

    def live_workspace_ids(self):
        return set()


def test_platform_start_restarts_the_runtimes_that_should_run_instead_of_a_stale_online(monkeypatch, redis_client):
    """After make run stops every runtime, the rows must not keep saying online with old URLs."""
    was_online = Workspace.objects.create(name="PM", status="online", url="http://localhost:40001")
    was_degraded = Workspace.objects.create(name="QA", status="degraded", url="http://localhost:40002")
    paused = Workspace.objects.create(name="Ops", status="paused", url="http://localhost:40003")
    Workspace.objects.create(name="Stranger", status="online", url="https://agent.example.com")
    backend = LocalRuntimesAfterARestart([was_online, was_degraded, paused])
    use_backend(monkeypatch, backend)
    queued = []
    monkeypatch.setattr(provisioning.provision_workspace, "delay",
                        lambda workspace_id, restart=False, **_options: queued.append((workspace_id, restart)))
    redis_client.set(f"ws:{was_online.id}:url", "http://localhost:40001")

    assert provisioning.restart_runtimes_after_platform_start() == 2

    rows = dict(Workspace.objects.values_list("name", "status"))
    assert rows == {"PM": "provisioning", "QA": "provisioning", "Ops": "paused", "Stranger": "online"}
    assert Workspace.objects.get(pk=was_online.pk).url == ""
    assert sorted(queued) == sorted([(str(was_online.id), True), (str(was_degraded.id), True)])
    assert redis_client.get(f"ws:{was_online.id}:url") is None
    assert sorted(StructureEvent.objects.filter(event_type="WORKSPACE_PROVISIONING").values_list("workspace_id", flat=True)) \
        == sorted([was_online.id, was_degraded.id])


# --- the launch (spec §16) -------------------------------------------------------------------------------

def test_the_launch_env_holds_the_platform_variables_and_secrets_cannot_override_them(settings):
    lead = Workspace.objects.create(name="Lead")
    workspace = Workspace.objects.create(name="Dev Lead", role="Reviews code", tier=2, parent=lead)
    secret_services.global_secret_set(key="OPENAI_API_KEY", value="sk-global")
    secret_services.workspace_secret_set(workspace_id=workspace.id, key="OPENAI_API_KEY", value="sk-own")
    for key in ("WORKSPACE_ID", "PLATFORM_URL", INBOUND_SECRET_ENV, "PORT", "TIER", "HEARTBEAT_INTERVAL"):
        secret_services.workspace_secret_set(workspace_id=workspace.id, key=key, value="hijacked")

    launch = provisioning.launch_for(workspace)

    env = launch.env
    assert env["OPENAI_API_KEY"] == "sk-own"  # the workspace's own value overrides the global one
    assert env["WORKSPACE_ID"] == str(workspace.id)
    assert env["PLATFORM_URL"] == env["MOLECULE_URL"] == settings.PLATFORM_URL
    assert env[INBOUND_SECRET_ENV] == inbound_secret(workspace.id)
    assert (env["TIER"], env["PARENT_ID"], env["MOLECULE_AGENT_ROLE"]) == ("2", str(lead.id), "Reviews code")
    assert env["HEARTBEAT_INTERVAL"] == "30"  # the runtime's default beat fits the default 60 s deadline
    assert "PORT" not in env  # where the runtime listens is the backend's to say, not a secret's
    assert env["GIT_AUTHOR_NAME"] == env["GIT_COMMITTER_NAME"] == "Dev Lead"
    assert env["GIT_AUTHOR_EMAIL"].startswith(f"dev-lead-{str(workspace.id)[:8]}@")
    assert "hijacked" not in env.values()
    assert launch.platform_keys >= {"WORKSPACE_ID", "PORT", "AGENT_URL", INBOUND_SECRET_ENV}


@pytest.mark.parametrize(("ttl", "interval"), [(60, "30"), (600, "30"), (20, "10"), (4, "2"), (1, "0.5")])
def test_runtimes_beat_at_least_twice_per_liveness_deadline(settings, ttl, interval):
    settings.LIVENESS_TTL_SECONDS = ttl
    workspace = Workspace.objects.create(name="Beats")
    assert provisioning.launch_for(workspace).env["HEARTBEAT_INTERVAL"] == interval


def test_issue_and_inject_revokes_every_live_token_and_the_launch_carries_the_new_one():
    workspace = Workspace.objects.create(name="Dev")
    old_rows = [token_mint(workspace=workspace)[0] for _ in range(2)]

    launch = provisioning.launch_for(workspace)

    live = WorkspaceAuthToken.objects.filter(workspace=workspace, revoked_at__isnull=True)
    assert [bytes(row.token_hash) for row in live] == [token_digest(launch.token)]
    assert all(row.revoked_at for row in WorkspaceAuthToken.objects.filter(pk__in=[r.pk for r in old_rows]))


def test_the_launch_names_the_template_and_a_generated_config():
    workspace = Workspace.objects.create(name="Nobody Templated This", runtime="echo", tier=1)
    launch = provisioning.launch_for(workspace)
    assert launch.template is None
    assert "name: Nobody Templated This" in launch.config_yaml and "runtime: echo" in launch.config_yaml


# --- restarts (spec §6.2) --------------------------------------------------------------------------------

@pytest.fixture
def queued_restarts(monkeypatch):
    queued: list[str] = []
    monkeypatch.setattr(provisioning.restart_workspace, "delay", lambda workspace_id, **_options: queued.append(workspace_id))
    return queued


def test_request_restarts_queues_only_workspaces_the_backend_provisioned(monkeypatch, queued_restarts):
    ours = Workspace.objects.create(name="Ours", status="online")
    stranger = Workspace.objects.create(name="Stranger", status="online")

    class ProvisionedOne(RecordingProvisioner):
        def provisioned_workspace_ids(self):
            return {str(ours.id)}

    use_backend(monkeypatch, ProvisionedOne())
    assert provisioning.request_restarts([ours.id, stranger.id]) == 1
    assert queued_restarts == [str(ours.id)]


def test_without_a_provisioner_nothing_is_queued(queued_restarts):
    workspace = Workspace.objects.create(name="Dev", status="online")
    assert provisioning.request_restarts([workspace.id]) == 0
    assert queued_restarts == []


@pytest.mark.parametrize("kind", ["removed", "paused", "hibernated", "external", "under a paused lead"])
def test_restart_skips_what_must_not_run(kind, provisioner, redis_client):
    lead = Workspace.objects.create(name="Lead", status="paused" if kind == "under a paused lead" else "online")
    status = kind if kind in ("removed", "paused", "hibernated") else "offline"
    workspace = Workspace.objects.create(name="Dev", status=status, parent=lead,
                                         runtime="external" if kind == "external" else "langgraph")
    assert provisioning.restart_workspace.apply(args=[str(workspace.id)]).get() == "skipped"
    assert provisioner.started == [] and provisioner.stopped == []


def test_a_concurrent_restart_of_the_same_workspace_is_skipped(provisioner, redis_client):
    workspace = Workspace.objects.create(name="Dev", status="offline")
    redis_client.set(provisioning.restart_lock_key(workspace.id), "1")
    assert provisioning.restart_workspace.apply(args=[str(workspace.id)]).get() == "locked"
    assert provisioner.started == []


def test_a_restart_stops_marks_provisioning_once_and_starts_with_a_fresh_launch(provisioner, redis_client):
    workspace = Workspace.objects.create(name="Dev", status="offline", url="http://localhost:40001")
    redis_client.set(f"ws:{workspace.id}:url", "http://localhost:40001")

    assert provisioning.restart_workspace.apply(args=[str(workspace.id)]).get() == "restarted"

    assert provisioner.stopped == [str(workspace.id)]
    [(started_id, launch)] = provisioner.started
    assert started_id == str(workspace.id) and launch.env["WORKSPACE_ID"] == str(workspace.id)
    workspace.refresh_from_db()
    assert (workspace.status, workspace.url) == ("provisioning", "")
    assert list(StructureEvent.objects.values_list("event_type", flat=True)) == ["WORKSPACE_PROVISIONING"]
    assert redis_client.get(f"ws:{workspace.id}:url") is None
    assert not redis_client.exists(provisioning.restart_lock_key(workspace.id))  # released


def test_a_restart_that_fails_to_start_marks_the_workspace_failed(monkeypatch, redis_client):
    use_backend(monkeypatch, RecordingProvisioner(fail_with="port is already allocated"))
    workspace = Workspace.objects.create(name="Dev", status="offline")
    assert provisioning.restart_workspace.apply(args=[str(workspace.id)]).get() == "failed"
    workspace.refresh_from_db()
    assert (workspace.status, workspace.last_sample_error) == ("failed", "workspace start failed: port is already allocated")
    assert list(StructureEvent.objects.order_by("created_at").values_list("event_type", "payload")) == [
        ("WORKSPACE_PROVISIONING", {"name": "Dev", "tier": workspace.tier, "runtime": workspace.runtime}),
        ("WORKSPACE_PROVISION_FAILED", {"error": "workspace start failed", "detail": "port is already allocated"}),
    ]


def test_mark_provisioning_leaves_a_row_that_left_the_allowed_statuses_alone():
    workspace = Workspace.objects.create(name="Dev", status="paused")
    moved = provisioning.mark_provisioning(Workspace.objects.filter(pk=workspace.pk, status="online"))
    assert moved == []
    workspace.refresh_from_db()
    assert workspace.status == "paused" and not StructureEvent.objects.exists()


def test_an_undecryptable_secret_fails_the_start_with_the_originals_error(provisioner, settings):
    workspace = Workspace.objects.create(name="Dev")
    secret_services.workspace_secret_set(workspace_id=workspace.id, key="OPENAI_API_KEY", value="sk-own")
    WorkspaceSecret.objects.filter(workspace=workspace).update(encrypted_value=b"not a ciphertext")
    provisioning.provision_workspace.apply(args=[str(workspace.id)])
    workspace.refresh_from_db()
    assert (workspace.status, workspace.last_sample_error) == ("failed", "failed to decrypt workspace secret")
    assert provisioner.started == []
