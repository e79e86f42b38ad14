"""Starting, stopping and removing workspace containers (spec §16), and what the backend reports."""

from __future__ import annotations

import time

import pytest

from workspaces.provisioners.base import ManagedContainer
from workspaces.provisioners.docker import (
    DockerProvisioner,
    config_volume_name,
    container_name,
    docker_host_url,
    image_for,
    image_name,
    workspace_volume_name,
)
from workspaces.tests.docker.conftest import (
    inspect,
    make_launch,
    read_archive,
    run,
    wait_running,
)


def env_of(info) -> dict[str, str]:
    return dict(item.split("=", 1) for item in info["Config"]["Env"])


def volume_names(engine, workspace) -> set[str]:
    listed = engine.api.volumes(filters={"label": f"molecule.workspace_id={workspace.id}"}).get("Volumes") or []
    return {volume["Name"] for volume in listed}


def test_the_container_environment_is_the_launch_plus_the_containers_own(provisioner, make_workspace, engine):
    workspace = make_workspace()
    secrets_and_platform = {
        "OPENAI_API_KEY": "sk-test-secret",
        # secrets named like the container's own variables do not override them
        "PORT": "1", "HOST": "10.0.0.1", "AGENT_URL": "http://evil.example", "WORKSPACE_CONFIG_PATH": "/evil",
        "CONFIGS_DIR": "/evil", "WORKSPACE_DIR": "/evil", "PLUGINS_DIR": "/evil", "PYTHONPATH": "/evil",
        "WORKSPACE_ID": "not-this-one",
    }
    launch = make_launch(workspace, env={**secrets_and_platform, "PLATFORM_URL": "http://user:pw@127.0.0.1:8080/base",
                                         "MOLECULE_INBOUND_SECRET": "inbound"})
    provisioner.start(workspace, launch=launch)
    info = inspect(engine, workspace)
    env = env_of(info)
    port = int(info["Config"]["Labels"]["molecule.agent_port"])
    assert env["OPENAI_API_KEY"] == "sk-test-secret" and env["MOLECULE_INBOUND_SECRET"] == "inbound"
    assert env["WORKSPACE_ID"] == str(workspace.id)
    assert env["WORKSPACE_CONFIG_PATH"] == env["CONFIGS_DIR"] == "/configs"
    assert env["WORKSPACE_DIR"] == "/workspace" and env["PLUGINS_DIR"] == "/plugins" and env["PYTHONPATH"] == "/app"
    assert env["PORT"] == "8000" and env["HOST"] == "0.0.0.0"
    assert env["AGENT_URL"] == f"http://localhost:{port}"  # registration accepts localhost by name
    # a loopback platform URL is the Docker host's alias inside; userinfo, port and path stay
    assert env["PLATFORM_URL"] == "http://user:pw@host.docker.internal:8080/base"
    assert env["MOLECULE_URL"] == "http://host.docker.internal:8080"
    assert env["TIER"] == "2"
    bindings = info["HostConfig"]["PortBindings"]["8000/tcp"]
    assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]


@pytest.mark.parametrize("url, expected", [
    ("http://localhost:9000/a?b=1", "http://host.docker.internal:9000/a?b=1"),
    ("http://127.0.0.5:9000", "http://host.docker.internal:9000"),
    ("http://[::1]:9000/x", "http://host.docker.internal:9000/x"),
    ("https://u:p@localhost/x", "https://u:p@host.docker.internal/x"),
    ("http://agent.example.com:9000", "http://agent.example.com:9000"),
    ("http://10.1.2.3:9000", "http://10.1.2.3:9000"),
    ("not a url", "not a url"),
])
def test_docker_host_url_rewrites_only_loopback_hosts(url, expected):
    assert docker_host_url(url) == expected


def test_a_stale_container_of_the_same_name_is_replaced(provisioner, make_workspace, engine, workspace_image):
    workspace = make_workspace()
    stale = engine.containers.create(workspace_image, ["sleep", "600"], name=container_name(workspace.id),
                                     labels={"molecule.workspace_id": str(workspace.id)})
    stale.start()
    provisioner.start(workspace, launch=make_launch(workspace))
    info = inspect(engine, workspace)
    assert info["Id"] != stale.id
    assert info["Config"]["Labels"]["molecule.platform.managed"] == "true"
    assert not engine.api.containers(all=True, filters={"id": stale.id})


def test_the_token_is_written_0600_for_the_runtime_user(provisioner, make_workspace, engine):
    workspace = make_workspace()
    launch = make_launch(workspace)
    provisioner.start(workspace, launch=launch)
    member, content = read_archive(engine, workspace, "/configs/.auth_token")
    assert content == launch.token.encode()
    assert member.mode & 0o777 == 0o600
    assert member.uid == 1000  # the image's runtime user (label molecule.runtime.uid)
    wait_running(engine, workspace)
    assert run(engine, workspace, "cat", "/configs/.auth_token") == (0, launch.token)
    # a second start brings the new token, over the old one
    second = make_launch(workspace)
    provisioner.start(workspace, launch=second)
    assert read_archive(engine, workspace, "/configs/.auth_token")[1] == second.token.encode()


def test_the_template_is_copied_with_lf_endings_while_the_volume_has_nothing_of_its_own(
        provisioner, make_workspace, engine, tmp_path):
    template = tmp_path / "template"
    (template / "skills" / "greet").mkdir(parents=True)
    (template / "config.yaml").write_text("name: From Template\nruntime: echo\n")
    (template / "run.sh").write_bytes(b"#!/bin/sh\r\necho hi\r\n")
    (template / "system-prompt.md").write_bytes(b"# Prompt\r\nBe brief.\r\n")
    (template / "skills" / "greet" / "tool.py").write_bytes(b"print('x')\r\n")
    (template / "data.csv").write_bytes(b"a,b\r\n1,2\r\n")  # not a script: kept as it is
    (template / "__pycache__").mkdir()
    (template / "__pycache__" / "junk.pyc").write_bytes(b"x")
    workspace = make_workspace()
    launch = make_launch(workspace, template=template, config_yaml="name: Generated\n")
    provisioner.start(workspace, launch=launch)
    assert read_archive(engine, workspace, "/configs/run.sh")[1] == b"#!/bin/sh\necho hi\n"
    assert read_archive(engine, workspace, "/configs/system-prompt.md")[1] == b"# Prompt\nBe brief.\n"
    assert read_archive(engine, workspace, "/configs/skills/greet/tool.py")[1] == b"print('x')\n"
    assert read_archive(engine, workspace, "/configs/data.csv")[1] == b"a,b\r\n1,2\r\n"
    # the template's config.yaml wins over the generated one
    assert read_archive(engine, workspace, "/configs/config.yaml")[1] == b"name: From Template\nruntime: echo\n"
    member, _ = read_archive(engine, workspace, "/configs/skills/greet/tool.py")
    assert member.uid == 1000 and member.mode & 0o777 == 0o644
    wait_running(engine, workspace)
    code, output = run(engine, workspace, "ls", "-a", "/configs")
    assert code == 0 and "run.sh" in output and "__pycache__" not in output
    code, owner = run(engine, workspace, "stat", "-c", "%U %a", "/configs/skills", "/configs/skills/greet")
    assert owner.split("\n")[:2] == ["agent 755", "agent 755"]  # the runtime can add files there

    # The volume has files of its own now: a later start keeps them.
    run(engine, workspace, "sh", "-c", "echo mine > /configs/system-prompt.md")
    (template / "system-prompt.md").write_text("changed template\n")
    provisioner.start(workspace, launch=make_launch(workspace, template=template))
    assert read_archive(engine, workspace, "/configs/system-prompt.md")[1] == b"mine\n"


def test_config_yaml_is_generated_only_when_there_is_none(provisioner, make_workspace, engine):
    workspace = make_workspace()
    provisioner.start(workspace, launch=make_launch(workspace, config_yaml="name: Generated\nruntime: echo\n"))
    assert read_archive(engine, workspace, "/configs/config.yaml")[1] == b"name: Generated\nruntime: echo\n"
    provisioner.start(workspace, launch=make_launch(workspace, config_yaml="name: Other\n"))
    assert read_archive(engine, workspace, "/configs/config.yaml")[1] == b"name: Generated\nruntime: echo\n"


def test_stop_keeps_the_container_and_volumes_and_remove_drops_them(provisioner, make_workspace, engine):
    workspace = make_workspace()
    provisioner.start(workspace, launch=make_launch(workspace))
    wait_running(engine, workspace)
    assert str(workspace.id) in provisioner.live_workspace_ids()
    provisioner.stop(workspace)
    assert inspect(engine, workspace)["State"]["Running"] is False
    assert volume_names(engine, workspace) == {config_volume_name(workspace.id), workspace_volume_name(workspace.id)}
    assert str(workspace.id) not in provisioner.live_workspace_ids()
    assert str(workspace.id) in provisioner.provisioned_workspace_ids()
    provisioner.stop(workspace)  # stopping a stopped container is fine
    provisioner.remove(workspace)
    assert not engine.api.containers(all=True, filters={"name": container_name(workspace.id)})
    assert volume_names(engine, workspace) == set()
    assert str(workspace.id) not in provisioner.provisioned_workspace_ids()
    provisioner.stop(workspace)  # and so is stopping one that is gone
    provisioner.remove(workspace)


def test_remove_also_drops_the_volume_of_an_earlier_tier(provisioner, make_workspace, engine):
    workspace = make_workspace(tier=2)
    provisioner.start(workspace, launch=make_launch(workspace))
    workspace.tier = 1  # T1 mounts no /workspace: the T2 volume stays until the workspace goes
    workspace.save(update_fields=["tier"])
    provisioner.start(workspace, launch=make_launch(workspace))
    assert workspace_volume_name(workspace.id) in volume_names(engine, workspace)
    provisioner.remove(workspace)
    assert volume_names(engine, workspace) == set()


def test_a_container_the_engine_stops_leaves_the_live_set(provisioner, make_workspace, engine):
    workspace = make_workspace()
    provisioner.start(workspace, launch=make_launch(workspace))
    wait_running(engine, workspace)
    engine.api.kill(container_name(workspace.id))
    assert str(workspace.id) not in provisioner.live_workspace_ids()
    assert str(workspace.id) in provisioner.provisioned_workspace_ids()


def test_urls_come_from_the_container(provisioner, make_workspace, engine, db):
    workspace, caller = make_workspace(), make_workspace()
    provisioner.start(workspace, launch=make_launch(workspace))
    provisioner.start(caller, launch=make_launch(caller))
    wait_running(engine, workspace)
    port = inspect(engine, workspace)["HostConfig"]["PortBindings"]["8000/tcp"][0]["HostPort"]
    assert provisioner.assigned_url(workspace.id) == f"http://localhost:{port}"
    assert provisioner.internal_url(workspace.id) == f"http://{container_name(workspace.id)}:8000"
    # one of our containers reaches the host's loopback through the Docker host alias ...
    assert provisioner.url_seen_from(caller.id, "http://localhost:9100/a2a") == "http://host.docker.internal:9100/a2a"
    assert provisioner.url_seen_from(caller.id, "http://agent.example.com/a2a") == "http://agent.example.com/a2a"
    # ... anyone else gets the URL as registered
    stranger = make_workspace()
    assert provisioner.url_seen_from(stranger.id, "http://localhost:9100/a2a") == "http://localhost:9100/a2a"
    assert provisioner.assigned_url(stranger.id) is None
    provisioner.stop(workspace)
    assert provisioner.assigned_url(workspace.id) is None  # a stopped container's port is nobody's


def test_a_missing_image_fails_the_start_naming_the_build_command(provisioner, make_workspace, settings):
    settings.WORKSPACE_IMAGE_TAG = "no-such-tag"
    workspace = make_workspace()
    with pytest.raises(RuntimeError, match=r"molecule/workspace-echo:no-such-tag not found: build it with "
                                           r"`python manage.py build_workspace_images --runtime echo`"):
        provisioner.start(workspace, launch=make_launch(workspace))


def test_unknown_runtimes_run_in_the_default_image():
    assert image_for("no-such-runtime") == image_name("langgraph")
    assert image_for("echo") == image_name("echo")


def test_docker_unreachable_fails_the_start_clearly(make_workspace, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    provisioner = DockerProvisioner()
    workspace = make_workspace()
    with pytest.raises(RuntimeError, match="Docker engine not reachable"):
        provisioner.start(workspace, launch=make_launch(workspace))
    assert provisioner.assigned_url(workspace.id) is None  # the proxy's path never raises


@pytest.mark.parametrize("access, bound, read_only", [("read_write", True, False), ("read_only", True, True),
                                                      ("none", False, False)])
def test_workspace_dir_and_access_choose_the_workspace_mount(provisioner, make_workspace, engine, tmp_path, access,
                                                             bound, read_only):
    directory = tmp_path / "project"
    directory.mkdir()
    directory.chmod(0o777)
    (directory / "README").write_text("hello\n")
    workspace = make_workspace(workspace_dir=str(directory), workspace_access=access)
    provisioner.start(workspace, launch=make_launch(workspace))
    mount = {m["Destination"]: m for m in inspect(engine, workspace)["Mounts"]}["/workspace"]
    if bound:
        assert mount["Type"] == "bind" and mount["Source"] == str(directory) and mount["RW"] is (not read_only)
        wait_running(engine, workspace)
        assert run(engine, workspace, "cat", "/workspace/README") == (0, "hello\n")
        code, _ = run(engine, workspace, "sh", "-c", "echo x > /workspace/new")
        assert (code == 0) is (not read_only)
    else:
        assert mount["Type"] == "volume" and mount["Name"] == workspace_volume_name(workspace.id)


def test_the_global_workspace_dir_serves_rows_without_one(provisioner, make_workspace, engine, tmp_path, settings):
    settings.WORKSPACE_DIR = str(tmp_path)
    workspace = make_workspace(workspace_access="read_only")
    provisioner.start(workspace, launch=make_launch(workspace))
    mount = {m["Destination"]: m for m in inspect(engine, workspace)["Mounts"]}["/workspace"]
    assert mount["Type"] == "bind" and mount["Source"] == str(tmp_path) and mount["RW"] is False


def test_an_orphan_container_and_its_volumes_are_removed(provisioner, make_workspace, engine):
    workspace = make_workspace()
    provisioner.start(workspace, launch=make_launch(workspace))
    listed = provisioner.list_managed_containers()
    assert ManagedContainer(name=container_name(workspace.id), managed=True) in listed
    provisioner.remove_orphan_container(ManagedContainer(name=container_name(workspace.id), managed=True))
    assert not engine.api.containers(all=True, filters={"name": container_name(workspace.id)})
    assert volume_names(engine, workspace) == set()
    assert ManagedContainer(name=container_name(workspace.id), managed=True) not in provisioner.list_managed_containers()


def test_another_platforms_containers_are_not_ours(provisioner, make_workspace, engine, settings):
    """Two platforms on one engine (make run and an end-to-end test): neither sweeps the other's."""
    ours, theirs = make_workspace(), make_workspace()
    provisioner.start(ours, launch=make_launch(ours))
    mine = settings.MOLECULE_PLATFORM_INSTANCE
    settings.MOLECULE_PLATFORM_INSTANCE = "another-platform"
    provisioner.start(theirs, launch=make_launch(theirs))
    assert inspect(engine, theirs)["Config"]["Labels"]["molecule.platform.instance"] == "another-platform"
    assert volume_names(engine, theirs)  # its volumes carry its instance too
    listed = engine.api.volumes(filters={"label": "molecule.platform.instance=another-platform"}).get("Volumes")
    assert {v["Name"] for v in listed} == volume_names(engine, theirs)
    settings.MOLECULE_PLATFORM_INSTANCE = mine
    wait_running(engine, theirs)
    names = {container.name for container in provisioner.list_managed_containers()}
    assert container_name(ours.id) in names and container_name(theirs.id) not in names
    assert str(theirs.id) not in provisioner.live_workspace_ids() | provisioner.provisioned_workspace_ids()
    assert str(ours.id) in provisioner.provisioned_workspace_ids()


def test_an_unlabelled_ws_container_is_listed_and_its_volumes_found_by_name(provisioner, make_workspace, engine,
                                                                              workspace_image):
    workspace = make_workspace()
    name = container_name(workspace.id)
    for volume in (config_volume_name(workspace.id), workspace_volume_name(workspace.id)):
        engine.api.create_volume(volume)
    engine.containers.create(workspace_image, ["sleep", "600"], name=name)
    assert ManagedContainer(name=name, managed=False) in provisioner.list_managed_containers()
    provisioner.remove_orphan_container(ManagedContainer(name=name, managed=False))
    assert not engine.api.containers(all=True, filters={"name": name})
    remaining = {v["Name"] for v in engine.api.volumes().get("Volumes") or []}
    assert config_volume_name(workspace.id) not in remaining and workspace_volume_name(workspace.id) not in remaining


def test_quick_restarts_back_off_and_a_stable_container_resets_the_count(provisioner, make_workspace, engine,
                                                                         monkeypatch):
    """A runtime that dies at once is recreated after 1 s, 2 s, 4 s… (the count in its labels);
    one that stayed up a minute starts the count again."""
    workspace = make_workspace()
    provisioner.start(workspace, launch=make_launch(workspace))
    assert provisioner.restart_backoff_seconds(workspace.id) == 0  # a first start owes nothing

    def restart() -> dict:
        provisioner.restart(workspace, prepare=lambda: make_launch(workspace))
        return inspect(engine, workspace)["Config"]["Labels"]

    labels = [restart() for _ in range(3)]
    assert [label["molecule.restarts"] for label in labels] == ["1", "2", "3"]
    waits = [float(label["molecule.next_restart_at"]) - float(label["molecule.started_at"]) for label in labels]
    assert [round(wait) for wait in waits] == [1, 2, 4]
    # what is still owed is the time left until next_restart_at (a busy machine may have used some of it)
    owed = provisioner.restart_backoff_seconds(workspace.id)
    assert 0 < owed <= 4 and abs(owed - (float(labels[-1]["molecule.next_restart_at"]) - time.time())) < 1

    started = float(labels[-1]["molecule.started_at"])
    monkeypatch.setattr("time.time", lambda: started + 61)  # it stayed up a minute
    assert provisioner.restart_backoff_seconds(workspace.id) == 0
    assert restart()["molecule.restarts"] == "1"
