"""Tests of the Docker backend against the real engine (marker ``docker``).

The echo runtime's image is built once per session with the same function as
``manage.py build_workspace_images`` (the engine's layer cache makes a rebuild take seconds) and
every test drives :class:`DockerProvisioner` directly with a hand-made :class:`Launch` and a real
Workspace row. Containers run on a network of their own (``molecule-test-net``); everything the
tests make — containers, helper containers, volumes — is found by its workspace label and
removed when the test ends, the network at the end of the session.

Without an engine these tests skip, except in CI (``CI=true``), where they run and fail.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import tarfile
import time
from pathlib import Path

import docker
import docker.errors
import pytest

from molecule_site import docker_engine
from workspaces.models import Workspace
from workspaces.provisioners.base import Launch
from workspaces.provisioners.docker import (
    DockerProvisioner,
    build_image,
    container_name,
)
from workspaces.provisioners.docker_files import WORKSPACE_LABEL

TEST_NETWORK = "molecule-test-net"
RUNTIME = "echo"
HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    ours = [item for item in items if Path(str(item.fspath)).is_relative_to(HERE)]
    if not ours:
        return
    engine = docker_engine.answers(timeout=10)
    for item in ours:
        item.add_marker(pytest.mark.docker)
        if not engine and not os.environ.get("CI"):
            item.add_marker(pytest.mark.skip(reason="no Docker engine (run ../shared/tools/docker-engine-up)"))


@pytest.fixture(scope="session")
def engine():
    """The SDK client; the test network is removed at the end of the session."""
    client = docker_engine.connect(timeout=120)
    yield client
    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
        client.api.remove_network(TEST_NETWORK)
    client.close()


@pytest.fixture(scope="session")
def workspace_image(engine):
    """The echo runtime's image, (re)built once per session (cached layers: seconds)."""
    return build_image(engine, RUNTIME, progress=lambda line: None)


@pytest.fixture(autouse=True)
def _docker_settings(settings):
    settings.WORKSPACE_NETWORK = TEST_NETWORK
    settings.MOLECULE_ALLOW_PRIVILEGED_TIERS = False
    settings.MOLECULE_ALLOW_T4 = False
    settings.WORKSPACE_DIR = None


@pytest.fixture
def provisioner(workspace_image):
    return DockerProvisioner()


@pytest.fixture
def make_workspace(db, engine):
    """A Workspace row (runtime echo); its containers and volumes go when the test ends."""
    made: list[Workspace] = []

    def make(**fields) -> Workspace:
        fields.setdefault("name", f"docker-test-{secrets.token_hex(3)}")
        fields.setdefault("runtime", RUNTIME)
        fields.setdefault("tier", 2)
        workspace = Workspace.objects.create(**fields)
        made.append(workspace)
        return workspace

    yield make
    for workspace in made:
        cleanup(engine, workspace.id)


def cleanup(engine, workspace_id) -> None:
    """Every container and volume labelled with (or named after) the workspace."""
    api = engine.api
    label = {"label": f"{WORKSPACE_LABEL}={workspace_id}"}
    names = {container_name(workspace_id)}
    names |= {entry["Id"] for entry in api.containers(all=True, filters=label)}
    for name in names:
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_container(name, force=True)
    volumes = {v["Name"] for v in api.volumes(filters=label).get("Volumes") or []}
    volumes |= {f"{container_name(workspace_id)}-configs", f"ws-{workspace_id}-workspace"}
    for volume in volumes:
        for _ in range(20):
            try:
                api.remove_volume(volume, force=True)
                break
            except docker.errors.NotFound:
                break
            except docker.errors.APIError:
                time.sleep(0.25)


def make_launch(workspace, **overrides) -> Launch:
    env = {
        "WORKSPACE_ID": str(workspace.id),
        "PLATFORM_URL": "http://localhost:8080",
        "MOLECULE_URL": "http://localhost:8080",
        "TIER": str(workspace.tier),
    }
    env.update(overrides.pop("env", {}))
    values = {
        "env": env,
        "token": "tok-" + secrets.token_urlsafe(24),
        "config_yaml": f"name: {workspace.name}\nruntime: echo\n",
        "platform_keys": frozenset({"WORKSPACE_ID", "PLATFORM_URL", "MOLECULE_URL", "TIER"}),
    }
    values.update(overrides)
    return Launch(**values)


def inspect(engine, workspace) -> dict:
    return engine.api.inspect_container(container_name(workspace.id))


def run(engine, workspace, *command, user: str | None = None) -> tuple[int, str]:
    """Run a command in the workspace's container: ``(exit code, output)``."""
    result = engine.containers.get(container_name(workspace.id)).exec_run(list(command), user=user or "")
    return result.exit_code, result.output.decode(errors="replace")


def read_archive(engine, workspace, path: str) -> tuple[tarfile.TarInfo, bytes]:
    """``(member, content)`` of one file in the container, through the engine's archive API."""
    stream, _ = engine.api.get_archive(container_name(workspace.id), path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        return member, tar.extractfile(member).read()


def wait_running(engine, workspace, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = inspect(engine, workspace)["State"]
        if state["Running"] and not state["Restarting"]:
            return state
        assert time.monotonic() < deadline, f"container not running: {state}"
        time.sleep(0.2)


@pytest.fixture
def running(provisioner, make_workspace, engine):
    """A started workspace (echo runtime, T2) whose container runs."""
    workspace = make_workspace()
    provisioner.start(workspace, launch=make_launch(workspace))
    wait_running(engine, workspace)
    return workspace
