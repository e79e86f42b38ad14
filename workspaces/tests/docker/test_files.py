"""The container file store (spec §14 through Docker): the host store's API, limits and errors."""

from __future__ import annotations

import io

import pytest

from molecule_site.errors import ApiError
from workspaces.filestores import FileTooLarge
from workspaces.provisioners.docker import DockerProvisioner, container_name
from workspaces.tests.docker.conftest import (
    make_launch,
    read_archive,
    run,
    wait_running,
)

MIB = 1024 * 1024


def helpers(engine, workspace) -> list[dict]:
    return engine.api.containers(all=True, filters={"label": ["molecule.platform.helper=files",
                                                              f"molecule.workspace_id={workspace.id}"]})


def exercise(store, engine, workspace):
    """The same round trip whatever container serves it."""
    store.write("notes/today.md", b"# Today\n")
    store.write("notes/today.md", b"# Today, again\n")  # replaced
    assert store.read("/configs", "notes/today.md") == b"# Today, again\n"
    listed = store.list("/configs", "", 2)
    assert {"path": "notes", "size": 0, "dir": True} in listed
    assert {"path": "notes/today.md", "size": 15, "dir": False} in listed
    assert [e["path"] for e in store.list("/configs", "notes", 1)] == ["notes/today.md"]
    assert store.has_root("/configs")
    with pytest.raises(FileNotFoundError):
        store.read("/configs", "notes/missing.md")
    with pytest.raises(FileNotFoundError):
        store.read("/configs", "notes")  # a directory is not a file
    with pytest.raises(IsADirectoryError):
        store.write("notes", b"x")
    store.write_from("/workspace", "uploads/blob.bin", io.BytesIO(b"\0\1\2" * 1000))
    with store.open("/workspace", "uploads/blob.bin") as handle:
        handle.seek(0, 2)
        assert handle.tell() == 3000
        handle.seek(0)
        assert handle.read(3) == b"\0\1\2"
    store.write_from("/workspace", "big.bin", io.BytesIO(b"x" * (MIB + 1)))
    with pytest.raises(FileTooLarge):
        store.read("/workspace", "big.bin")
    store.delete("notes")
    assert store.list("/configs", "notes", 1) == []
    with pytest.raises(FileNotFoundError):
        store.read("/configs", "notes/today.md")
    store.delete("never-was")  # missing is fine
    assert store.source == "container"


def test_round_trip_through_the_running_container(provisioner, running, engine):
    store = provisioner.file_store(running)
    exercise(store, engine, running)
    assert helpers(engine, running) == []  # the running container served everything
    store.write("skill.md", b"hello\n")
    member, content = read_archive(engine, running, "/configs/skill.md")
    assert content == b"hello\n" and member.uid == 1000 and member.mode & 0o777 == 0o644
    # the runtime (its own user) sees and may change what the platform wrote
    assert run(engine, running, "sh", "-c", "cat /configs/skill.md && echo more >> /configs/skill.md") == (0, "hello\n")


def test_round_trip_through_a_helper_while_stopped_and_the_files_survive(provisioner, running, engine):
    provisioner.stop(running)
    store = provisioner.file_store(running)
    exercise(store, engine, running)
    store.write("kept.md", b"written while stopped\n")
    assert len(helpers(engine, running)) == 1
    helper = helpers(engine, running)[0]
    assert engine.api.inspect_container(helper["Id"])["HostConfig"]["NetworkMode"] == "none"
    store.close()
    assert helpers(engine, running) == []  # the helper is gone with the store
    engine.api.start(container_name(running.id))
    wait_running(engine, running)
    assert run(engine, running, "cat", "/configs/kept.md") == (0, "written while stopped\n")
    assert run(engine, running, "stat", "-c", "%u %a", "/configs/kept.md") == (0, "1000 644\n")


def test_a_workspace_without_a_container_gets_its_volume_from_a_write(provisioner, make_workspace, engine, tmp_path):
    """A bundle import writes files before the first start: the volume is made for it."""
    workspace = make_workspace()
    store = provisioner.file_store(workspace)
    assert not store.has_root("/configs") and store.list("/configs", "", 1) == []
    store.write("config.yaml", b"name: Imported\nruntime: echo\n")
    store.close()
    launch = make_launch(workspace, config_yaml="name: Generated\n")
    provisioner.start(workspace, launch=launch)
    assert read_archive(engine, workspace, "/configs/config.yaml")[1] == b"name: Imported\nruntime: echo\n"
    store = provisioner.file_store(workspace)
    store.discard()
    assert not engine.api.containers(all=True, filters={"name": container_name(workspace.id)})
    assert not provisioner.file_store(workspace).has_root("/configs")


def test_seed_copies_the_template_once(provisioner, make_workspace, engine, tmp_path):
    (tmp_path / "config.yaml").write_text("name: T\n")
    (tmp_path / "run.sh").write_bytes(b"echo a\r\n")
    workspace = make_workspace()
    store = provisioner.file_store(workspace)
    assert not store.has_root("/configs")
    store.seed(tmp_path)
    assert store.has_root("/configs")
    assert store.read("/configs", "run.sh") == b"echo a\n"
    (tmp_path / "run.sh").write_text("changed\n")
    store.seed(tmp_path)
    assert store.read("/configs", "run.sh") == b"echo a\n"
    store.close()


def test_a_token_alone_is_not_configuration_of_its_own(provisioner, make_workspace, engine):
    workspace = make_workspace()
    provisioner.start(workspace, launch=make_launch(workspace, config_yaml=""))
    store = provisioner.file_store(workspace)
    assert not store.has_root("/configs")  # the template still shows in the Files API
    store.write("config.yaml", b"name: Mine\n")
    assert store.has_root("/configs")


def test_paths_escaping_their_root_are_refused_and_hidden(provisioner, running, engine):
    run(engine, running, "sh", "-c", "ln -s /etc /configs/etc-link && ln -s /etc/passwd /configs/passwd-link "
                                     "&& mkdir -p /configs/inner && ln -s /configs/inner /configs/ok-link")
    store = provisioner.file_store(running)
    with pytest.raises(ApiError) as refused:
        store.read("/configs", "etc-link/passwd")
    assert refused.value.body == {"error": "invalid path"}
    with pytest.raises(ApiError):
        store.read("/configs", "passwd-link")
    with pytest.raises(ApiError):
        store.write("etc-link/evil", b"x")
    with pytest.raises(ApiError):
        store.list("/configs", "etc-link", 1)
    names = {entry["path"] for entry in store.list("/configs", "", 1)}
    assert "etc-link" not in names and "passwd-link" not in names
    assert "ok-link" in names  # a link that stays inside is listed
    store.delete("passwd-link")  # the link goes, not what it points at
    assert run(engine, running, "test", "-e", "/etc/passwd")[0] == 0
    assert "passwd-link" not in {entry["path"] for entry in store.list("/configs", "", 1)}


def test_listings_skip_tool_directories(provisioner, running, engine):
    run(engine, running, "sh", "-c", "mkdir -p /workspace/.git /workspace/node_modules /workspace/src "
                                     "&& touch /workspace/src/a.py /workspace/.git/HEAD")
    store = provisioner.file_store(running)
    assert [e["path"] for e in store.list("/workspace", "", 3)] == ["src", "src/a.py"]


def test_home_and_plugins_are_read_inside_the_running_container_only(provisioner, running, engine):
    run(engine, running, "sh", "-c", "echo hi > /home/agent/note.txt")
    store = provisioner.file_store(running)
    assert store.has_root("/home")
    assert store.read("/home", "agent/note.txt") == b"hi\n"
    assert {"path": "agent/note.txt", "size": 3, "dir": False} in store.list("/home", "", 2)
    provisioner.stop(running)
    stopped = provisioner.file_store(running)
    assert not stopped.has_root("/home") and stopped.list("/home", "", 2) == []
    assert stopped.list("/plugins", "", 1) == []
    with pytest.raises(FileNotFoundError):
        stopped.read("/home", "agent/note.txt")


def test_t1_has_no_workspace_root(provisioner, make_workspace, engine):
    workspace = make_workspace(tier=1)
    provisioner.start(workspace, launch=make_launch(workspace))
    store = provisioner.file_store(workspace)
    assert not store.has_root("/workspace") and store.list("/workspace", "", 1) == []
    with pytest.raises(OSError, match="Read-only"):
        store.write_from("/workspace", "x.txt", io.BytesIO(b"x"))
    store.write("config.yaml", b"name: T1\n")  # /configs is writable on a read-only rootfs
    assert store.read("/configs", "config.yaml") == b"name: T1\n"


def test_a_read_only_bind_refuses_writes_with_a_clear_error(provisioner, make_workspace, engine, tmp_path):
    tmp_path.chmod(0o777)
    workspace = make_workspace(workspace_dir=str(tmp_path), workspace_access="read_only")
    provisioner.start(workspace, launch=make_launch(workspace))
    wait_running(engine, workspace)
    (tmp_path / "seen.txt").write_text("from the host\n")
    store = provisioner.file_store(workspace)
    assert store.read("/workspace", "seen.txt") == b"from the host\n"
    with pytest.raises(OSError) as refused:
        store.write_from("/workspace", "nope.txt", io.BytesIO(b"x"))
    assert "Read-only" in refused.value.strerror
    assert not (tmp_path / "nope.txt").exists()


def test_no_engine_is_an_os_error_saying_docker_is_not_available(make_workspace, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    store = DockerProvisioner().file_store(make_workspace())
    with pytest.raises(OSError) as failed:
        store.write("a.md", b"x")
    assert failed.value.strerror == "docker not available"
