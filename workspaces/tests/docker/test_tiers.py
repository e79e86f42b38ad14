"""Each tier's container, as ``docker inspect`` shows it (spec §16), and what T1/T2 enforce."""

from __future__ import annotations

import pytest

from workspaces.provisioners.docker import (
    DOCKER_SOCKET,
    config_volume_name,
    tier_plan,
    workspace_volume_name,
)
from workspaces.tests.docker.conftest import inspect, make_launch, run, wait_running

MIB = 1024 * 1024


def started(provisioner, make_workspace, engine, **fields):
    workspace = make_workspace(**fields)
    provisioner.start(workspace, launch=make_launch(workspace))
    return workspace, inspect(engine, workspace)


def created(provisioner, make_workspace, engine, **fields):
    """Created, not started: this machine's engine cannot start privileged containers (its own
    capability bounding set lacks CAP_SYS_RESOURCE: runc fails with "unable to apply caps"), and
    what these tests check is the configuration the engine was given."""
    workspace = make_workspace(**fields)
    provisioner.create_container(workspace, launch=make_launch(workspace))
    return workspace, inspect(engine, workspace)


def mounts(info) -> dict[str, dict]:
    return {mount["Destination"]: mount for mount in info["Mounts"]}


def host_cpus(engine) -> int:
    return engine.info()["NCPU"]


def test_t1_is_sandboxed_read_only_rootfs_tmpfs_and_only_the_config_volume(provisioner, make_workspace, engine):
    workspace, info = started(provisioner, make_workspace, engine, tier=1)
    host = info["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["Tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=64m"}
    assert set(mounts(info)) == {"/configs"}
    assert mounts(info)["/configs"]["Name"] == config_volume_name(workspace.id)
    assert host["Memory"] == 0 and host["NanoCpus"] == 0
    assert host["Privileged"] is False and host["PidMode"] == ""


def card_served(engine, workspace) -> str:
    """The runtime's agent card, fetched inside its container (the runtime is up and serving)."""
    fetch = ("import time, urllib.request\nfor _ in range(100):\n    try:\n"
             "        print(urllib.request.urlopen('http://127.0.0.1:8000/.well-known/agent-card.json').read().decode())\n"
             "        break\n    except OSError:\n        time.sleep(0.1)")
    code, output = run(engine, workspace, "python3", "-c", fetch)
    assert code == 0 and '"name"' in output, output
    return output


def test_t1_cannot_write_outside_tmp_and_cannot_run_programs_from_tmp(provisioner, make_workspace, engine):
    workspace, _ = started(provisioner, make_workspace, engine, tier=1)
    wait_running(engine, workspace)
    card_served(engine, workspace)  # the runtime itself lives with a read-only rootfs
    assert inspect(engine, workspace)["RestartCount"] == 0
    code, output = run(engine, workspace, "sh", "-c", "echo x > /rootfs-file")
    assert code != 0 and "Read-only file system" in output
    code, output = run(engine, workspace, "sh", "-c", "echo x > /home/agent/file")
    assert code != 0 and "Read-only file system" in output
    assert run(engine, workspace, "sh", "-c", "echo x > /tmp/file && cat /tmp/file") == (0, "x\n")
    # noexec: a script written to /tmp cannot be run
    code, output = run(engine, workspace, "sh", "-c", "printf '#!/bin/sh\\necho ran\\n' > /tmp/s && chmod +x /tmp/s && /tmp/s")
    assert code != 0 and "ran" not in output and "Permission denied" in output
    # the config volume stays writable (the runtime may rewrite its token there)
    assert run(engine, workspace, "sh", "-c", "echo y > /configs/scratch && cat /configs/scratch") == (0, "y\n")


def test_t2_gets_512_mib_one_cpu_and_a_workspace_volume(provisioner, make_workspace, engine):
    workspace, info = started(provisioner, make_workspace, engine, tier=2)
    host = info["HostConfig"]
    assert host["Memory"] == 512 * MIB
    assert host["MemorySwap"] == 512 * MIB  # no swap on top of the limit
    assert host["NanoCpus"] == 1_000_000_000
    assert host["ReadonlyRootfs"] is False and host["Privileged"] is False and host["PidMode"] == ""
    assert mounts(info)["/workspace"]["Name"] == workspace_volume_name(workspace.id)
    assert mounts(info)["/workspace"]["Type"] == "volume"
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert host["PortBindings"]["8000/tcp"][0]["HostIp"] == "127.0.0.1"
    assert host["NetworkMode"] == "molecule-test-net"
    aliases = info["NetworkSettings"]["Networks"]["molecule-test-net"]["Aliases"]
    assert f"ws-{str(workspace.id)[:12]}" in aliases
    assert info["Config"]["Labels"]["molecule.platform.managed"] == "true"
    assert info["Config"]["Labels"]["molecule.workspace_id"] == str(workspace.id)
    assert any(entry.startswith("host.docker.internal:") for entry in host["ExtraHosts"])
    wait_running(engine, workspace)
    assert workspace.name in card_served(engine, workspace)


@pytest.mark.parametrize("tier", [0, 7])
def test_unknown_tiers_are_standard(tier):
    assert tier_plan(tier) == tier_plan(2)


def test_t2_memory_limit_is_enforced(provisioner, make_workspace, engine):
    workspace, _ = started(provisioner, make_workspace, engine, tier=2)
    wait_running(engine, workspace)
    allocate = "import sys; block = bytearray(int(sys.argv[1]) * 1024 * 1024); print('allocated')"
    assert run(engine, workspace, "python3", "-c", allocate, "200") == (0, "allocated\n")
    code, output = run(engine, workspace, "python3", "-c", allocate, "700")
    assert code == 137 and "allocated" not in output  # SIGKILL from the OOM killer


def test_t3_without_the_switch_has_its_limits_and_no_privileges(provisioner, make_workspace, engine):
    _, info = started(provisioner, make_workspace, engine, tier=3)
    host = info["HostConfig"]
    assert host["Memory"] == 2048 * MIB
    assert host["NanoCpus"] == min(2, host_cpus(engine)) * 1_000_000_000
    assert host["Privileged"] is False and host["PidMode"] == ""
    assert info["Config"]["User"] == "agent"  # the image's unprivileged runtime user


def test_t3_with_the_switch_is_privileged_in_the_host_pid_namespace(provisioner, make_workspace, engine, settings):
    settings.MOLECULE_ALLOW_PRIVILEGED_TIERS = True
    _, info = created(provisioner, make_workspace, engine, tier=3)
    host = info["HostConfig"]
    assert host["Privileged"] is True and host["PidMode"] == "host"
    assert host["NetworkMode"] == "molecule-test-net"  # stays on the Docker network
    assert info["Config"]["User"] == "0"
    assert DOCKER_SOCKET not in mounts(info)


def test_t4_without_its_switch_is_treated_like_t3(provisioner, make_workspace, engine, settings):
    settings.MOLECULE_ALLOW_PRIVILEGED_TIERS = True
    _, info = created(provisioner, make_workspace, engine, tier=4)
    host = info["HostConfig"]
    assert host["NetworkMode"] == "molecule-test-net"
    assert DOCKER_SOCKET not in mounts(info)
    assert host["Privileged"] is True and host["PidMode"] == "host"
    assert host["Memory"] == 4096 * MIB
    # 4 CPUs asked, capped at the engine's count: more would make the create fail
    assert host["NanoCpus"] == min(4, host_cpus(engine)) * 1_000_000_000


def test_t4_with_its_switch_gets_host_network_and_the_docker_socket(provisioner, make_workspace, engine, settings):
    settings.MOLECULE_ALLOW_T4 = True
    workspace, info = created(provisioner, make_workspace, engine, tier=4)
    host = info["HostConfig"]
    assert host["NetworkMode"] == "host"
    assert host["Privileged"] is True and host["PidMode"] == "host"
    assert mounts(info)[DOCKER_SOCKET]["Type"] == "bind"
    assert not host["PortBindings"]
    env = dict(item.split("=", 1) for item in info["Config"]["Env"])
    port = info["Config"]["Labels"]["molecule.agent_port"]
    # on the host's network the runtime binds its own loopback port; the URLs stay loopback
    assert env["PORT"] == port and env["HOST"] == "127.0.0.1"
    assert env["AGENT_URL"] == f"http://localhost:{port}"  # registration accepts localhost by name
    assert env["PLATFORM_URL"] == "http://localhost:8080"
    assert provisioner.internal_url(workspace.id) is None


def test_tier_overrides_set_memory_and_cpu_shares(provisioner, make_workspace, engine, settings):
    settings.TIER_LIMITS = {**settings.TIER_LIMITS, 2: (300, 512), 1: (128, 256)}
    _, info = started(provisioner, make_workspace, engine, tier=2)
    assert info["HostConfig"]["Memory"] == 300 * MIB
    assert info["HostConfig"]["NanoCpus"] == 500_000_000  # 512 shares = half a CPU
    _, info = started(provisioner, make_workspace, engine, tier=1)
    assert info["HostConfig"]["Memory"] == 128 * MIB
    assert info["HostConfig"]["NanoCpus"] == 250_000_000
