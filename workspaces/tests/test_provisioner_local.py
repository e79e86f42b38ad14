"""The local-process provisioner with REAL ``molecule-runtime`` processes on loopback.

The platform the runtimes register with is pytest-django's ``live_server``; Celery tasks that a
worker would run are captured when queued and run in-process with ``.apply()``. Every runtime
started here uses the ``echo`` adapter (no LLM). Whatever happens, the fixture teardown stops
every runtime whose config lives under this test's ``MOLECULE_HOME``.

Run as root (as here and in CI), every runtime runs as a uid of its own, as in production.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from activity.models import StructureEvent
from molecule_site.tests.backends import use_backend
from registry import liveness, proxy
from registry.discovery import workspace_discover
from registry.models import WorkspaceAuthToken
from registry.redis_keys import url_key
from registry.tokens import inbound_secret
from workspaces import files, provisioners, provisioning, services, team
from workspaces.models import Workspace, WorkspaceStatus
from workspaces.provisioners import get_provisioner, runtime_users
from workspaces.provisioners import local as local_backend
from workspaces.provisioners.base import Provisioner
from workspaces.provisioners.local import LocalProcessProvisioner, read_record
from workspaces.provisioners.none import NoProvisioner

pytestmark = pytest.mark.django_db(transaction=True)

ONLINE_TIMEOUT_SECONDS = 20


# --- fixtures -------------------------------------------------------------------------------------------

class Queue:
    """Celery tasks queued by the code under test, run here with ``.apply()`` like a worker would."""

    def __init__(self):
        self.items: list[tuple[object, tuple, dict, dict]] = []

    def capture(self, task, monkeypatch):
        def delay(*args, **kwargs):
            self.items.append((task, args, kwargs, {}))

        def apply_async(args=(), kwargs=None, **options):
            self.items.append((task, tuple(args), kwargs or {}, options))

        monkeypatch.setattr(task, "delay", delay)
        monkeypatch.setattr(task, "apply_async", apply_async)

    def names(self) -> list[str]:
        return [task.name.rsplit(".", 1)[-1] for task, *_ in self.items]

    def run(self) -> list:
        results = []
        while self.items:
            task, args, kwargs, _options = self.items.pop(0)
            results.append(task.apply(args=args, kwargs=kwargs).get())
        return results


def _our_runtimes(home) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if not any("molecule-runtime" in part for part in process.info["cmdline"] or []):
                continue
            if process.environ().get("WORKSPACE_CONFIG_PATH", "").startswith(str(home)):
                found.append(process)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def local(settings, live_server, monkeypatch, redis_client):
    """The local backend, the live server as the platform, captured Celery tasks; teardown kills
    every runtime of this test even when it failed. ``MOLECULE_HOME`` is a directory of /tmp:
    pytest's own are closed to the runtimes' users."""
    home = Path(tempfile.mkdtemp(prefix="molecule-local-"))
    settings.MOLECULE_HOME = home
    settings.LOCAL_RUNTIME_EXECUTABLE = None  # the default runtime, bridged when its users need it
    settings.MOLECULE_PROVISIONER = "local"
    settings.PLATFORM_URL = live_server.url
    settings.A2A_ALLOW_PRIVATE_TARGETS = False  # MOLECULE_ENV is not dev
    settings.SAAS_MODE = False
    get_provisioner.cache_clear()
    queue = Queue()
    for task in (provisioning.provision_workspace, provisioning.restart_workspace):
        queue.capture(task, monkeypatch)
    provisioner = get_provisioner()
    assert isinstance(provisioner, LocalProcessProvisioner)
    try:
        yield provisioner, queue
    finally:
        with _suppress():
            LocalProcessProvisioner().stop_all()
        proxy.close_db_connections()  # the proxy's DB threads served the live server
        for process in _our_runtimes(home):
            with _suppress():
                os.killpg(process.pid, signal.SIGKILL)
        get_provisioner.cache_clear()
        shutil.rmtree(home, ignore_errors=True)


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return True


def create(queue: Queue, name: str = "Echo", *, parent: Workspace | None = None, secrets=None) -> Workspace:
    body = services.workspace_create(
        new=services.NewWorkspace(name=name, runtime="echo", parent_id=parent.id if parent else None,
                                  secrets=secrets or {}),
        platform_url="http://unused",
    )
    assert queue.names()[-1] == "provision_workspace"
    return Workspace.objects.get(pk=body["id"])


def wait_for(workspace: Workspace, status: str, timeout: float = ONLINE_TIMEOUT_SECONDS) -> Workspace:
    deadline = time.monotonic() + timeout
    while True:
        workspace.refresh_from_db()
        if workspace.status == status:
            return workspace
        if time.monotonic() > deadline:
            log = local_backend.read_log_tail(workspace.id)
            raise AssertionError(f"{workspace.name} is {workspace.status}, not {status}; runtime log:\n{log}")
        time.sleep(0.1)


def start_online(queue: Queue, name: str = "Echo", **kwargs) -> Workspace:
    workspace = create(queue, name, **kwargs)
    queue.run()
    return wait_for(workspace, WorkspaceStatus.ONLINE)


def pid_of(workspace: Workspace) -> int:
    return read_record(workspace.id)["pid"]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def no_zombie_children() -> bool:
    zombies = []
    for child in psutil.Process().children(recursive=True):
        with _suppress():
            if child.status() == psutil.STATUS_ZOMBIE:
                zombies.append(child.pid)
    return not zombies


def a2a_send(base_url: str, workspace: Workspace, text: str) -> httpx.Response:
    body = {
        "jsonrpc": "2.0", "id": "1", "method": "message/send",
        "params": {"message": {"role": "user", "messageId": uuid.uuid4().hex, "parts": [{"kind": "text", "text": text}]}},
    }
    # As the operator: canvas calls outside dev mode carry the admin token.
    headers = {"Authorization": f"Bearer {settings.ADMIN_TOKEN}"} if settings.ADMIN_TOKEN else {}
    return httpx.post(f"{base_url}/workspaces/{workspace.id}/a2a", json=body, headers=headers, timeout=20)


# --- start, register, A2A through the proxy, stop ----------------------------------------------------------

PLATFORM_SECRETS = {
    "ADMIN_TOKEN": "admin-token-env-probe", "SECRETS_ENCRYPTION_KEY": "encryption-key-env-probe",
    "DJANGO_SECRET_KEY": "django-key-env-probe", "DATABASE_URL": "postgresql://u:db-password@db/molecule",
    "REDIS_URL": "redis://:redis-password@cache:6379/0",
}


def test_started_runtime_registers_online_at_its_assigned_loopback_url_and_answers_through_the_proxy(
    local, live_server, monkeypatch
):
    provisioner, queue = local
    for name, value in PLATFORM_SECRETS.items():
        monkeypatch.setenv(name, value)
    workspace = create(queue, secrets={"MY_API_KEY": "sk-test-123"})
    queue.run()
    record = read_record(workspace.id)
    assert set(record) == {"pid", "port", "url", "started_at", "restarts", "next_restart_at"}
    assert record["url"] == f"http://localhost:{record['port']}" == provisioner.assigned_url(workspace.id)
    process = psutil.Process(record["pid"])
    assert "molecule-runtime" in " ".join(process.cmdline())
    assert process.ppid() != os.getpid()  # detached: not a child of the worker
    assert no_zombie_children()

    home = local_backend.workspace_home(workspace.id)
    configs = home / "configs"
    assert "runtime: echo" in (configs / "config.yaml").read_text()
    token_file = configs / ".auth_token"
    uid = local_backend.read_provisioned(workspace.id)["uid"]
    if runtime_users.isolated():  # root's, readable by the runtime's group alone
        assert (stat.S_IMODE(token_file.stat().st_mode), token_file.stat().st_gid) == (0o640, uid)
    else:
        assert (stat.S_IMODE(token_file.stat().st_mode), uid) == (0o600, None)
    live_tokens = WorkspaceAuthToken.objects.filter(workspace=workspace, revoked_at__isnull=True)
    assert live_tokens.count() == 1 and live_tokens.get().prefix == token_file.read_text()[:8]

    env = process.environ()
    assert env["WORKSPACE_ID"] == str(workspace.id)
    assert env["PLATFORM_URL"] == live_server.url
    assert env["WORKSPACE_CONFIG_PATH"] == str(configs)
    assert env["WORKSPACE_DIR"] == str(home / "workspace")  # the runtime's /workspace (chat attachments)
    assert (env["PORT"], env["HOST"], env["AGENT_URL"]) == (str(record["port"]), "127.0.0.1", record["url"])
    assert env["MY_API_KEY"] == "sk-test-123"  # merged secrets
    assert env["MOLECULE_INBOUND_SECRET"] == inbound_secret(workspace.id)
    assert env["DELEGATION_RESULTS_FILE"].startswith(str(home / "private"))
    assert not PLATFORM_SECRETS.keys() & env.keys()  # the platform's own env stays out
    if Path(settings.LOCAL_RUNTIME_TOOLS_DIR).is_dir():  # the npm CLIs (codex, openclaw…) come first
        assert env["PATH"].split(os.pathsep)[0] == settings.LOCAL_RUNTIME_TOOLS_DIR

    workspace = wait_for(workspace, WorkspaceStatus.ONLINE)
    assert workspace.url == record["url"]
    assert workspace.id and str(workspace.id) in provisioner.live_workspace_ids()

    # Loopback is refused by the proxy's SSRF filter outside dev mode — but this URL is ours.
    reply = a2a_send(live_server.url, workspace, "hello there")
    assert reply.status_code == 200, reply.text
    assert reply.json()["result"]["parts"][0]["text"] == "echo: hello there"

    log = local_backend.read_log_tail(workspace.id)
    assert "starting molecule-runtime" in log and token_file.read_text() not in log

    provisioner.stop(workspace)
    assert gone(record["pid"])
    assert read_record(workspace.id) is None
    assert provisioner.assigned_url(workspace.id) is None
    assert str(workspace.id) not in provisioner.live_workspace_ids()
    assert no_zombie_children()


def test_a_url_an_agent_reports_is_still_checked_by_the_proxy(local, live_server, redis_client):
    _provisioner, queue = local
    workspace = start_online(queue)
    record = read_record(workspace.id)
    # The register commits the row (online) before it caches the URL: overwrite only after that,
    # or the register's own write lands on top of ours.
    deadline = time.monotonic() + 10
    while (redis_client.get(url_key(workspace.id)) or b"").decode() != record["url"]:
        assert time.monotonic() < deadline, "the register never cached the runtime's URL"
        time.sleep(0.05)
    other = f"http://localhost:{record['port'] + 1}"
    redis_client.set(url_key(workspace.id), other)
    reply = a2a_send(live_server.url, workspace, "hi")
    assert (reply.status_code, reply.json()["error"]) == (502, "workspace URL is not publicly routable")
    assert reply.json()["detail"].endswith("which is loopback")  # its runtime is live: not "restarting"


def test_discovery_gives_the_assigned_url_of_an_online_local_workspace(local, redis_client):
    _provisioner, queue = local
    workspace = start_online(queue)
    redis_client.flushdb()  # the cached internal URL expired
    status, body = workspace_discover(caller_id=workspace.id, target_id=workspace.id)
    assert (status, body["url"]) == (200, read_record(workspace.id)["url"])


# --- crash, detection, restart with back-off -----------------------------------------------------------------

def test_a_killed_runtime_is_taken_offline_by_the_health_sweep_and_restarted_with_backoff(local):
    provisioner, queue = local
    workspace = start_online(queue)
    first_pid = pid_of(workspace)

    os.kill(first_pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while str(workspace.id) in provisioner.live_workspace_ids():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # A heartbeat the runtime sent just before it died may still be in the server; once handled it
    # would (rightly) turn an offline row online again, so let it land before sweeping.
    time.sleep(0.5)

    assert liveness.container_health_sweep() == 1
    assert wait_for(workspace, WorkspaceStatus.OFFLINE)
    assert queue.names() == ["restart_workspace"]
    assert queue.run() == ["restarted"]
    workspace.refresh_from_db()
    assert (workspace.status, workspace.url) == (WorkspaceStatus.PROVISIONING, "")
    record = read_record(workspace.id)
    assert record["pid"] != first_pid and record["restarts"] == 1
    assert 0 < record["next_restart_at"] - record["started_at"] <= 1.5

    # An immediate second restart is refused by the back-off and re-queued for later.
    assert provisioning.restart_workspace.apply(args=[str(workspace.id)]).get() == "backoff"
    (_task, _args, _kwargs, options), = queue.items
    assert options["countdown"] >= 1
    queue.items.clear()
    assert pid_of(workspace) == record["pid"]

    wait_for(workspace, WorkspaceStatus.ONLINE)

    def event_types():  # event rows are written on commit, just after the status
        return [e.event_type for e in StructureEvent.objects.filter(workspace_id=workspace.id).order_by("created_at")]

    expected = [
        "WORKSPACE_PROVISIONING", "WORKSPACE_ONLINE", "WORKSPACE_OFFLINE", "WORKSPACE_PROVISIONING", "WORKSPACE_ONLINE",
    ]
    deadline = time.monotonic() + 5
    while event_types() != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert event_types() == expected
    assert no_zombie_children()


def test_the_liveness_sweep_restarts_a_runtime_that_missed_its_deadline(local):
    _provisioner, queue = local
    workspace = start_online(queue)
    first_pid = pid_of(workspace)
    os.kill(first_pid, signal.SIGKILL)
    time.sleep(0.5)  # a heartbeat already in the server would move the deadline forward again
    Workspace.objects.filter(pk=workspace.pk).update(liveness_deadline="2000-01-01T00:00:00Z")

    assert liveness.liveness_sweep() == 1
    assert queue.run() == ["restarted"]
    wait_for(workspace, WorkspaceStatus.ONLINE)
    assert pid_of(workspace) != first_pid


def test_backoff_doubles_per_quick_restart_and_resets_after_a_stable_minute(local):
    provisioner, queue = local
    workspace = create(queue)
    queue.run()
    path = local_backend.workspace_home(workspace.id) / local_backend.RECORD_FILE

    def restart_with(restarts: int, up_for: float) -> dict:
        record = read_record(workspace.id)
        record.update(restarts=restarts, started_at=time.time() - up_for, next_restart_at=0)
        path.write_text(json.dumps(record))
        provisioner.restart(workspace, prepare=lambda: provisioning.launch_for(workspace))
        return read_record(workspace.id)

    record = restart_with(3, up_for=5)
    assert record["restarts"] == 4
    assert 7.5 <= record["next_restart_at"] - record["started_at"] <= 8.5
    assert provisioner.restart_backoff_seconds(workspace.id) > 7

    record = restart_with(20, up_for=5)
    assert 299 <= record["next_restart_at"] - record["started_at"] <= 300.5  # capped at 300 s

    record = restart_with(20, up_for=61)  # stayed up a minute: not a crash loop
    assert record["restarts"] == 1
    assert record["next_restart_at"] - record["started_at"] <= 1.5


# --- lifecycle mapping ---------------------------------------------------------------------------------------------

def test_pause_stops_the_runtime_resume_and_restart_start_it_again(local):
    provisioner, queue = local
    workspace = start_online(queue)
    pid = pid_of(workspace)

    services.workspace_pause(workspace_id=workspace.id)
    assert gone(pid) and read_record(workspace.id) is None

    services.workspace_resume(workspace_id=workspace.id)
    assert queue.names() == ["provision_workspace"]
    queue.run()
    wait_for(workspace, WorkspaceStatus.ONLINE)
    resumed_pid = pid_of(workspace)
    assert resumed_pid != pid

    services.workspace_restart(workspace_id=workspace.id)
    queue.run()
    assert gone(resumed_pid)
    wait_for(workspace, WorkspaceStatus.ONLINE)
    assert pid_of(workspace) != resumed_pid
    assert no_zombie_children()


def test_the_restart_task_skips_paused_external_and_removed_workspaces(local):
    _provisioner, queue = local
    paused = Workspace.objects.create(name="Paused", status=WorkspaceStatus.PAUSED, runtime="echo")
    external = Workspace.objects.create(name="Ext", status=WorkspaceStatus.OFFLINE, runtime="external")
    child = Workspace.objects.create(name="Child", status=WorkspaceStatus.OFFLINE, runtime="echo", parent=paused)
    for workspace in (paused, external, child):
        assert provisioning.restart_workspace.apply(args=[str(workspace.id)]).get() == "skipped"
    assert provisioning.restart_workspace.apply(args=[str(uuid.uuid4())]).get() == "skipped"
    assert read_record(child.id) is None and not queue.items


def test_delete_with_cascade_stops_every_runtime_and_revokes_every_token(local):
    _provisioner, queue = local
    lead = create(queue, "Lead")
    member = create(queue, "Member", parent=lead)
    queue.run()
    wait_for(lead, WorkspaceStatus.ONLINE)
    wait_for(member, WorkspaceStatus.ONLINE)
    pids = [pid_of(lead), pid_of(member)]

    services.workspace_delete(workspace_id=lead.id, confirm=True, purge=False)

    assert all(gone(pid) for pid in pids)
    assert read_record(lead.id) is None and read_record(member.id) is None
    tokens = WorkspaceAuthToken.objects.filter(workspace_id__in=[lead.id, member.id])
    assert tokens.exists() and not tokens.filter(revoked_at__isnull=True).exists()
    assert no_zombie_children()


def test_collapse_stops_the_children_runtimes(local):
    _provisioner, queue = local
    lead = Workspace.objects.create(name="Lead", status=WorkspaceStatus.ONLINE, runtime="echo")
    member = create(queue, "Member", parent=lead)
    queue.run()
    pid = pid_of(member)
    team.team_collapse(workspace_id=lead.id)
    assert gone(pid) and read_record(member.id) is None


def test_stop_local_runtimes_stops_all_and_the_health_sweep_restarts_them_later(local):
    provisioner, queue = local
    first, second = create(queue, "One"), create(queue, "Two")
    queue.run()
    wait_for(first, WorkspaceStatus.ONLINE)
    pids = [pid_of(first), pid_of(second)]

    call_command("stop_local_runtimes")

    assert all(gone(pid) for pid in pids)
    assert provisioner.live_workspace_ids() == set()
    assert liveness.container_health_sweep() >= 1  # the next `make run`: gone runtimes → offline + restart
    assert "restart_workspace" in queue.names()


# --- only what this backend provisioned is ever restarted ------------------------------------------------

def test_a_workspace_that_only_registered_goes_offline_when_stale_and_nothing_is_started_for_it(local):
    provisioner, queue = local
    stranger = Workspace.objects.create(name="Stranger", status=WorkspaceStatus.ONLINE, runtime="echo")
    # What the attacker of the finding did: config and a skill written through the Files API.
    files.files_replace(workspace_id=stranger.id, files={"config.yaml": "name: Stranger\nruntime: echo\n"})

    assert liveness.container_health_sweep() == 0  # no runtime of ours to be missing: left alone
    assert wait_for(stranger, WorkspaceStatus.ONLINE)
    Workspace.objects.filter(pk=stranger.pk).update(liveness_deadline="2000-01-01T00:00:00Z")
    assert liveness.liveness_sweep() == 1
    assert wait_for(stranger, WorkspaceStatus.OFFLINE)
    assert provisioning.request_restarts([stranger.id]) == 0  # as the proxy or a secret change would ask

    assert queue.items == []
    assert str(stranger.id) not in provisioner.provisioned_workspace_ids()
    assert read_record(stranger.id) is None and _our_runtimes(settings.MOLECULE_HOME) == []


def test_a_provisioned_workspace_stays_provisioned_while_stopped(local):
    provisioner, queue = local
    workspace = create(queue)
    queue.run()
    provisioner.stop(workspace)
    assert read_record(workspace.id) is None
    assert provisioner.provisioned_workspace_ids() == {str(workspace.id)}
    assert provisioning.request_restarts([workspace.id]) == 1
    assert queue.names() == ["restart_workspace"]


# --- runtimes are not the platform (root only) -----------------------------------------------------------

PROBE_SKILL = """
import os, subprocess


def _attempt(action, path):
    try:
        action(path)
    except PermissionError:
        return "denied"
    except OSError as exc:
        return type(exc).__name__
    return "allowed"


def _read(path):
    with open(path, "rb") as handle:
        handle.read()


def _append(path):
    with open(path, "ab"):
        pass


def probe(read: list, write: list) -> dict:
    # A helper that leaves the runtime's session and, once sh exits, its process tree.
    helper = subprocess.run(["sh", "-c", "setsid sleep 600 >/dev/null 2>&1 & echo $!"], capture_output=True,
                            text=True, check=True).stdout
    return {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "helper": int(helper),
            "read": {path: _attempt(_read, path) for path in read},
            "write": {path: _attempt(_append, path) for path in write}}
"""


def tool_reply(live_server, workspace: Workspace, text: str) -> dict:
    reply = a2a_send(live_server.url, workspace, text)
    assert reply.status_code == 200, reply.text
    return json.loads(reply.json()["result"]["parts"][0]["text"])


@pytest.mark.skipif(not runtime_users.isolated(), reason="runtimes have users of their own when the platform is root")
def test_each_runtime_runs_as_a_user_of_its_own_that_reads_neither_the_platform_nor_other_workspaces(
    local, live_server
):
    provisioner, queue = local
    prober, other = create(queue, "Prober"), create(queue, "Other")
    files.files_replace(workspace_id=prober.id, files={
        "config.yaml": "name: Prober\nruntime: echo\nskills: [probe]\n",
        "skills/probe/SKILL.md": "---\nname: Probe\n---\nProbe the sandbox.\n",
        "skills/probe/scripts/probe.py": PROBE_SKILL,
    })
    queue.run()
    wait_for(prober, WorkspaceStatus.ONLINE)
    wait_for(other, WorkspaceStatus.ONLINE)
    mine, theirs = local_backend.workspace_home(prober.id), local_backend.workspace_home(other.id)
    uid, other_uid = (local_backend.read_provisioned(w.id)["uid"] for w in (prober, other))
    allowed = {
        "read": [mine / "configs" / ".auth_token", mine / "configs" / "config.yaml"],
        "write": [mine / "private" / "scratch"],
    }
    denied = {
        "read": [theirs / "configs" / ".auth_token", theirs / "configs" / "config.yaml", theirs / "runtime.log",
                 f"/proc/{os.getpid()}/environ", f"/proc/{pid_of(other)}/environ"],
        "write": [mine / local_backend.RECORD_FILE, mine / local_backend.PROVISIONED_FILE, mine / ".lock",
                  mine / "configs" / "config.yaml", mine / "configs" / "planted.py", mine.parent / "planted"],
    }
    asked = {kind: [str(path) for path in allowed[kind] + denied[kind]] for kind in ("read", "write")}

    seen = tool_reply(live_server, prober, "/tool probe " + json.dumps(asked))  # answers: it works

    assert 0 not in (uid, other_uid) and uid != other_uid
    assert (seen["uid"], seen["gid"], seen["groups"]) == (uid, uid, [])
    assert psutil.Process(pid_of(prober)).uids().real == uid
    for kind in ("read", "write"):
        assert {path: seen[kind][str(path)] for path in allowed[kind]} == dict.fromkeys(allowed[kind], "allowed")
        assert {path: seen[kind][str(path)] for path in denied[kind]} == dict.fromkeys(denied[kind], "denied")
    assert (theirs.stat().st_uid, theirs.stat().st_gid, stat.S_IMODE(theirs.stat().st_mode)) == (0, other_uid, 0o750)
    assert stat.S_IMODE(mine.parent.stat().st_mode) == 0o711

    # A helper that left the runtime's process tree goes with the runtime; the uid stays.
    assert psutil.Process(seen["helper"]).ppid() != pid_of(prober)
    services.workspace_restart(workspace_id=prober.id)
    queue.run()
    assert gone(seen["helper"])
    wait_for(prober, WorkspaceStatus.ONLINE)
    assert local_backend.read_provisioned(prober.id)["uid"] == uid
    assert psutil.Process(pid_of(prober)).uids().real == uid


def test_a_platform_that_is_not_root_runs_its_runtimes_as_its_own_user(local, monkeypatch):
    monkeypatch.setattr(runtime_users, "isolated", lambda: False)
    _provisioner, queue = local
    workspace = start_online(queue)
    process = psutil.Process(pid_of(workspace))
    home = local_backend.workspace_home(workspace.id)
    assert process.uids().real == os.geteuid()
    assert local_backend.read_provisioned(workspace.id)["uid"] is None
    assert stat.S_IMODE((home / "configs" / ".auth_token").stat().st_mode) == 0o600
    assert process.environ()["HOME"] == os.environ["HOME"] and process.cwd() == str(home / "private")


@pytest.mark.skipif(not runtime_users.isolated(), reason="runtimes have users of their own when the platform is root")
def test_a_runtime_its_user_cannot_run_fails_the_workspace_naming_what_is_in_the_way(local, settings, tmp_path):
    _provisioner, queue = local
    private_executable = tmp_path / "molecule-runtime"  # pytest's directories are root's alone
    private_executable.write_text("#!/bin/sh\n")
    private_executable.chmod(0o755)
    settings.LOCAL_RUNTIME_EXECUTABLE = str(private_executable)
    workspace = create(queue)
    queue.run()
    workspace.refresh_from_db()
    assert workspace.status == WorkspaceStatus.FAILED
    assert f"cannot reach {private_executable}" in workspace.last_sample_error
    assert "LOCAL_RUNTIME_EXECUTABLE" in workspace.last_sample_error


# --- small rules -----------------------------------------------------------------------------------------------

def test_stop_never_fails_without_a_process_and_foreign_pids_are_not_runtimes(local):
    provisioner, _queue = local
    workspace = Workspace.objects.create(name="Idle", status=WorkspaceStatus.OFFLINE, runtime="echo")
    provisioner.stop(workspace)  # nothing recorded
    home = local_backend.workspace_home(workspace.id)
    home.mkdir(parents=True, exist_ok=True)
    (home / local_backend.RECORD_FILE).write_text(json.dumps({"pid": os.getpid(), "url": "http://localhost:1"}))
    assert provisioner.live_workspace_ids() == set()  # our own pid is not a molecule-runtime
    provisioner.stop(workspace)  # and is not signalled
    assert read_record(workspace.id) is None


@pytest.fixture
def no_docker_engine(monkeypatch, tmp_path):
    """No Docker engine answers: the SDK is pointed at a socket nothing listens on."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")


def test_auto_picks_local_when_the_runtime_is_installed_and_none_otherwise(settings, monkeypatch, no_docker_engine):
    settings.MOLECULE_PROVISIONER = "auto"
    get_provisioner.cache_clear()
    assert isinstance(get_provisioner(), LocalProcessProvisioner)
    monkeypatch.setattr(provisioners, "runtime_executable", lambda runtime="": None)
    get_provisioner.cache_clear()
    assert isinstance(get_provisioner(), NoProvisioner)
    settings.MOLECULE_PROVISIONER = "local"
    get_provisioner.cache_clear()
    assert get_provisioner().name == "local"
    get_provisioner.cache_clear()


def test_auto_picks_none_in_production_unless_local_runtimes_are_allowed(settings, caplog, no_docker_engine):
    settings.MOLECULE_PROVISIONER, settings.MOLECULE_ENV, settings.IS_PRODUCTION = "auto", "production", True
    settings.MOLECULE_ALLOW_LOCAL_PROVISIONER = False
    get_provisioner.cache_clear()
    assert isinstance(get_provisioner(), NoProvisioner)
    assert "auto picks none with MOLECULE_ENV=production" in caplog.text
    assert "MOLECULE_ALLOW_LOCAL_PROVISIONER=1" in caplog.text
    settings.MOLECULE_ALLOW_LOCAL_PROVISIONER = True
    get_provisioner.cache_clear()
    assert isinstance(get_provisioner(), LocalProcessProvisioner)
    get_provisioner.cache_clear()


def test_the_suite_runs_with_the_none_backend():
    assert get_provisioner().name == "none"


def test_a_missing_runtime_executable_fails_the_workspace(local, monkeypatch):
    _provisioner, queue = local
    monkeypatch.setattr(local_backend, "runtime_executable", lambda runtime="": None)
    workspace = create(queue)
    queue.run()
    workspace.refresh_from_db()
    assert workspace.status == WorkspaceStatus.FAILED
    assert "molecule-runtime is not installed" in workspace.last_sample_error


def test_discovery_trusts_an_external_url_only_when_our_provisioner_assigned_it(monkeypatch):
    class Assigning(NoProvisioner):
        def __init__(self, assigned):
            self.assigned = assigned

        def assigned_url(self, workspace_id):
            return self.assigned.get(str(workspace_id))

    caller = Workspace.objects.create(name="Caller", status=WorkspaceStatus.ONLINE, runtime="external")
    target = Workspace.objects.create(name="Target", status=WorkspaceStatus.ONLINE, runtime="external",
                                      url="http://127.0.0.1:9001")
    use_backend(monkeypatch, Assigning({}))
    assert workspace_discover(caller_id=caller.id, target_id=target.id) == (
        503, {"error": "workspace URL failed safety check"}
    )
    use_backend(monkeypatch, Assigning({str(target.id): "http://127.0.0.1:9001"}))
    assert workspace_discover(caller_id=caller.id, target_id=target.id) == (
        200, {"id": str(target.id), "url": "http://127.0.0.1:9001", "name": "Target"}
    )


def test_a_local_runtime_discovers_an_external_agent_on_loopback_where_it_registered(settings):
    """Issue 13: a local process reaches http://localhost:<port> as registered; the Docker host
    alias (for containers) does not resolve here, and three retries against it gave up."""
    settings.MOLECULE_PROVISIONER = "local"
    get_provisioner.cache_clear()
    caller = Workspace.objects.create(name="PM", status=WorkspaceStatus.ONLINE, runtime="echo")
    agent = Workspace.objects.create(name="Agent", status=WorkspaceStatus.ONLINE, runtime="external",
                                     url="http://localhost:7311")
    assert workspace_discover(caller_id=caller.id, target_id=agent.id) == (
        200, {"id": str(agent.id), "url": "http://localhost:7311", "name": "Agent"}
    )
    get_provisioner.cache_clear()


def test_admin_shows_the_escaped_tail_of_the_runtime_log(operator_client, settings, tmp_path):
    settings.MOLECULE_HOME = tmp_path
    workspace = Workspace.objects.create(name="Logged", status=WorkspaceStatus.ONLINE, runtime="echo")
    path = local_backend.log_path(workspace.id)
    path.parent.mkdir(parents=True)
    path.write_text("x" * 30_000 + "\nold line\n<script>alert(1)</script> last line\n")
    body = operator_client.get(reverse("admin:workspaces_workspace_change", args=[workspace.id])).content.decode()
    assert "Runtime log (last 20 KB)" in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; last line" in body and "<script>alert(1)" not in body
    assert "x" * 25_000 not in body  # only the tail


def test_the_base_interface_assigns_no_urls():
    class Plain(Provisioner):
        name, available = "plain", True

        def start(self, workspace, *, launch):
            pass

        def stop(self, workspace):
            pass

    assert Plain().assigned_url(uuid.uuid4()) is None
    assert Plain().restart_backoff_seconds(uuid.uuid4()) == 0


def test_a_runtime_with_an_environment_of_its_own_runs_from_it(tmp_path, settings):
    """crewai, hermes and google-adk cannot share the project venv: `make runtime-envs` gives each one
    its own, and the local backend starts that runtime from there (the others from the project venv)."""
    settings.LOCAL_RUNTIME_EXECUTABLE = ""
    settings.LOCAL_RUNTIME_ENVS_DIR = str(tmp_path)
    own = tmp_path / "crewai" / "bin" / "molecule-runtime"
    own.parent.mkdir(parents=True)
    own.write_text("#!/bin/sh\n")
    default = local_backend.runtime_executable()
    assert default is not None and not default.startswith(str(tmp_path))
    own.chmod(0o644)
    assert local_backend.runtime_executable("crewai") == default  # not executable: not an environment
    own.chmod(0o755)
    assert local_backend.runtime_executable("crewai") == str(own)
    assert local_backend.runtime_executable("langgraph") == default
    assert local_backend.runtime_executable("../crewai") == default  # a runtime name is never a path
