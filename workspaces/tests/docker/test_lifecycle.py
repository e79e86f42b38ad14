"""The whole platform on the Docker backend, end to end (issue 13's "tests that must exist").

One platform (web + worker + beat, ``MOLECULE_PROVISIONER=docker``) for the module; each
workspace is created through the API, and its runtime — ``molecule-runtime`` in the echo image —
registers from inside its container over the workspace network's gateway listener. The engine is
the real one; the rows, tokens and events are the platform's own.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
from urllib.parse import urlsplit, urlunsplit

import docker.errors
import httpx
import psycopg
import pytest
import websockets
from django.conf import settings

from molecule_site.tests.launch import platform_on_fresh_database, run_async, wait_until
from registry import liveness
from workspaces.provisioners import get_provisioner
from workspaces.provisioners.base import ManagedContainer
from workspaces.provisioners.docker import (
    config_volume_name,
    container_name,
    workspace_volume_name,
)
from workspaces.provisioners.docker_files import WORKSPACE_LABEL
from workspaces.tests.docker.conftest import TEST_NETWORK, cleanup

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ADMIN_TOKEN = "docker-e2e-admin-token"
ONLINE_WITHIN = 120  # an image start, the runtime's boot and its register


@pytest.fixture(scope="module")
def platform(workspace_image):
    with tempfile.TemporaryDirectory(prefix="molecule-docker-e2e-") as home:
        with platform_on_fresh_database(
            home, redis_db=8, ADMIN_TOKEN=ADMIN_TOKEN, MOLECULE_PROVISIONER="docker", WORKSPACE_NETWORK=TEST_NETWORK,
            CONTAINER_SWEEP_SECONDS="2", LIVENESS_SWEEP_SECONDS="2", RATE_LIMIT="1000000", WEB_CONCURRENCY="1",
        ) as launch:
            yield launch


@pytest.fixture
def api(platform):
    with httpx.Client(base_url=platform.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30) as client:
        yield client


@pytest.fixture
def created(api, engine):
    """Create workspaces through the API; their containers and volumes go when the test ends."""
    ids: list[str] = []

    def create(**body) -> str:
        body.setdefault("name", f"e2e-{secrets.token_hex(3)}")
        body.setdefault("runtime", "echo")
        response = api.post("/workspaces", json=body)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
        return ids[-1]

    yield create
    for workspace_id in ids:
        api.delete(f"/workspaces/{workspace_id}", params={"confirm": "true"})
        cleanup(engine, workspace_id)


def status(api, workspace_id) -> str:
    return api.get(f"/workspaces/{workspace_id}").json()["status"]


def wait_status(api, workspace_id, expected: str, timeout: float = ONLINE_WITHIN) -> None:
    wait_until(lambda: status(api, workspace_id) == expected, timeout=timeout, interval=0.5,
               what=f"workspace {workspace_id} {expected}")


def container(engine, workspace_id) -> dict:
    return engine.api.inspect_container(container_name(workspace_id))


def live_tokens(platform, workspace_id) -> int:
    url = urlunsplit(urlsplit(settings.DATABASE_URL)._replace(path=f"/{platform.database}"))
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM workspace_auth_tokens WHERE workspace_id = %s AND revoked_at IS NULL",
                            [workspace_id]).fetchone()[0]


def test_create_runs_a_container_with_its_tiers_limits_that_registers_and_goes_online(api, created, engine):
    workspace_id = created(tier=2)
    wait_status(api, workspace_id, "online")
    inspected = container(engine, workspace_id)
    assert inspected["State"]["Running"]
    assert inspected["HostConfig"]["Memory"] == 512 * 1024 * 1024
    assert inspected["Config"]["Labels"]["molecule.platform.managed"] == "true"
    assert TEST_NETWORK in inspected["NetworkSettings"]["Networks"]
    [binding] = inspected["NetworkSettings"]["Ports"]["8000/tcp"]
    assert binding["HostIp"] == "127.0.0.1"
    # the runtime registered the URL the backend published, and the platform reaches it
    assert api.get(f"/workspaces/{workspace_id}").json()["url"] == f"http://localhost:{binding['HostPort']}"


def test_a_killed_container_goes_offline_is_restarted_and_comes_back_online(api, created, engine, platform):
    workspace_id = created(tier=2)
    wait_status(api, workspace_id, "online")
    first = container(engine, workspace_id)["Id"]
    engine.api.kill(container_name(workspace_id))
    # the health sweep (every 2 s here) notices, takes it offline and asks for the restart
    wait_until(lambda: status(api, workspace_id) in ("offline", "provisioning"), timeout=60, interval=0.3,
               what="offline after the kill")
    wait_status(api, workspace_id, "online")
    restarted = container(engine, workspace_id)
    assert restarted["State"]["Running"] and restarted["Id"] != first  # a fresh container, same name
    assert live_tokens(platform, workspace_id) == 1  # issue-and-inject: the old token is gone


def test_pause_stops_the_container_and_resume_brings_it_back(api, created, engine):
    workspace_id = created(tier=2)
    wait_status(api, workspace_id, "online")
    assert api.post(f"/workspaces/{workspace_id}/pause").json() == {"status": "paused", "paused_count": 1}
    wait_until(lambda: not container(engine, workspace_id)["State"]["Running"], timeout=30, what="stopped")
    assert status(api, workspace_id) == "paused"
    assert api.post(f"/workspaces/{workspace_id}/resume").json() == {"status": "provisioning", "resumed_count": 1}
    wait_status(api, workspace_id, "online")
    assert container(engine, workspace_id)["State"]["Running"]


def test_delete_removes_the_container_and_its_volumes_and_revokes_the_tokens(api, created, engine, platform):
    workspace_id = created(tier=2)
    wait_status(api, workspace_id, "online")
    assert live_tokens(platform, workspace_id) == 1
    assert api.delete(f"/workspaces/{workspace_id}").json() == {"status": "removed", "cascade_deleted": 0}
    with pytest.raises(docker.errors.NotFound):
        container(engine, workspace_id)
    volumes = {v["Name"] for v in engine.api.volumes().get("Volumes") or []}
    assert config_volume_name(workspace_id) not in volumes and workspace_volume_name(workspace_id) not in volumes
    assert live_tokens(platform, workspace_id) == 0


def test_the_files_api_reads_and_writes_through_a_running_and_a_stopped_container(api, created, engine):
    workspace_id = created(tier=2)
    wait_status(api, workspace_id, "online")
    assert api.put(f"/workspaces/{workspace_id}/files/notes/plan.md", json={"content": "ship it\n"}).json() == {
        "status": "saved", "path": "notes/plan.md"}
    code, output = engine.containers.get(container_name(workspace_id)).exec_run(["cat", "/configs/notes/plan.md"])
    assert (code, output) == (0, b"ship it\n")  # the runtime sees what the API wrote

    api.post(f"/workspaces/{workspace_id}/pause")
    wait_until(lambda: not container(engine, workspace_id)["State"]["Running"], timeout=30, what="stopped")
    read = api.get(f"/workspaces/{workspace_id}/files/notes/plan.md").json()
    assert (read["content"], read["size"]) == ("ship it\n", 8)
    assert api.put(f"/workspaces/{workspace_id}/files/notes/plan.md", json={"content": "shipped\n"}).status_code == 200
    listed = {entry["path"] for entry in api.get(f"/workspaces/{workspace_id}/files", params={"depth": 2}).json()}
    assert {"config.yaml", "notes/plan.md"} <= listed and ".auth_token" in listed
    api.post(f"/workspaces/{workspace_id}/resume")
    wait_status(api, workspace_id, "online")
    code, output = engine.containers.get(container_name(workspace_id)).exec_run(["cat", "/configs/notes/plan.md"])
    assert (code, output) == (0, b"shipped\n")


def test_a_bundle_of_a_docker_workspace_imports_into_a_new_container(api, created, engine):
    source = created(tier=2, name="Bundled Source")
    wait_status(api, source, "online")
    api.put(f"/workspaces/{source}/files/system-prompt.md", json={"content": "You review pull requests.\n"})
    bundle = api.get(f"/bundles/export/{source}").json()
    assert bundle["name"] == "Bundled Source"
    bundle["name"] = "Bundled Copy"
    imported = api.post("/bundles/import", json=bundle)
    assert imported.status_code == 201, imported.text
    copy = imported.json()["workspace_id"]
    try:
        wait_status(api, copy, "online")
        code, output = engine.containers.get(container_name(copy)).exec_run(["cat", "/configs/system-prompt.md"])
        assert (code, output) == (0, b"You review pull requests.\n")
    finally:
        api.delete(f"/workspaces/{copy}")
        cleanup(engine, copy)


def test_the_terminal_opens_a_shell_in_the_container(api, created, platform):
    workspace_id = created(tier=2)
    wait_status(api, workspace_id, "online")

    async def session() -> str:
        url = platform.url.replace("http://", "ws://") + f"/workspaces/{workspace_id}/terminal"
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                                      origin=platform.url) as socket:
            await socket.send(json.dumps({"type": "resize", "cols": 100, "rows": 30}))
            await socket.send(b"echo in-$((6*7)) && stty size\n")
            seen = ""
            async with asyncio.timeout(30):
                while "in-42" not in seen or "30 100" not in seen:
                    frame = await socket.recv()
                    seen += frame.decode(errors="replace") if isinstance(frame, bytes) else frame
            return seen

    seen = run_async(session)
    assert "in-42" in seen and "30 100" in seen


def test_an_orphan_container_is_reaped_by_the_sweep(engine, workspace_image, settings):
    """A managed ``ws-*`` container whose workspace the platform has no row for is removed, volumes too."""
    settings.MOLECULE_PROVISIONER = "docker"
    get_provisioner.cache_clear()
    orphan_id = f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-0000-0000-000000000000"
    name = container_name(orphan_id)
    engine.volumes.create(config_volume_name(orphan_id), labels={WORKSPACE_LABEL: orphan_id})
    engine.containers.create(workspace_image, name=name, labels={"molecule.platform.managed": "true",
                                                                 WORKSPACE_LABEL: orphan_id},
                             volumes={config_volume_name(orphan_id): {"bind": "/configs", "mode": "rw"}})
    try:
        assert ManagedContainer(name, True) in get_provisioner().list_managed_containers()
        assert liveness.orphan_container_sweep() >= 1
        with pytest.raises(docker.errors.NotFound):
            engine.api.inspect_container(name)
        assert config_volume_name(orphan_id) not in {v.name for v in engine.volumes.list()}
    finally:
        cleanup(engine, orphan_id)
        get_provisioner.cache_clear()


def test_auto_picks_docker_when_an_engine_answers(settings, engine):  # noqa: F811
    settings.MOLECULE_PROVISIONER = "auto"
    get_provisioner.cache_clear()
    try:
        assert get_provisioner().name == "docker"
    finally:
        get_provisioner.cache_clear()
