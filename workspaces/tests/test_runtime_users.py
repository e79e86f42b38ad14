"""The rules behind the local runtimes' users: the uid range, reachability, interpreters."""

import os
import subprocess
import shutil
import tempfile
from pathlib import Path

import pytest

from workspaces.provisioners import local, runtime_users

NOBODY = 65534  # has a passwd and a group entry on every Linux


def test_pick_uid_takes_the_lowest_id_no_workspace_and_no_account_holds(settings):
    settings.LOCAL_RUNTIME_UID_BASE, settings.LOCAL_RUNTIME_UID_COUNT = NOBODY - 1, 3
    assert runtime_users.pick_uid(set()) == NOBODY - 1
    assert runtime_users.pick_uid({NOBODY - 1}) == NOBODY + 1  # nobody's id is skipped
    with pytest.raises(RuntimeError, match="no free runtime uid left in LOCAL_RUNTIME_UID_BASE=65533"):
        runtime_users.pick_uid({NOBODY - 1, NOBODY + 1})


def test_in_range_accepts_only_ids_of_the_configured_range(settings):
    settings.LOCAL_RUNTIME_UID_BASE, settings.LOCAL_RUNTIME_UID_COUNT = 5000, 10
    assert [runtime_users.in_range(uid) for uid in (4999, 5000, 5009, 5010, None, "5001")] == [
        False, True, True, False, False, False
    ]


@pytest.fixture
def open_directory():
    """A directory every user may enter (pytest's own are closed to other users)."""
    directory = Path(tempfile.mkdtemp(prefix="molecule-reach-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


@pytest.mark.skipif(os.geteuid() != 0, reason="gives a directory to another group")
def test_unreachable_names_the_first_directory_closed_to_the_user_following_links(open_directory):
    uid, wanted = 1_900_000_123, runtime_users.READ_AND_SEARCH
    closed = open_directory / "closed"
    script = closed / "bin" / "molecule-runtime"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    link = open_directory / "molecule-runtime"
    link.symlink_to(script)
    closed.chmod(0o700)

    assert runtime_users.unreachable(script, uid, wanted=wanted) == closed
    assert runtime_users.unreachable(link, uid, wanted=wanted) == closed
    os.chown(closed, 0, uid)
    closed.chmod(0o750)  # its group may enter
    assert runtime_users.unreachable(link, uid, wanted=wanted) is None
    script.chmod(0o700)
    assert runtime_users.unreachable(link, uid, wanted=wanted) == script


def test_the_interpreter_of_a_script_is_its_shebang(tmp_path):
    script, binary = tmp_path / "molecule-runtime", tmp_path / "elf"
    script.write_text("#!/opt/runtime/bin/python -I\nimport sys\n")
    binary.write_bytes(b"\x7fELF\x02\x01")
    assert runtime_users.interpreter_of(script) == Path("/opt/runtime/bin/python")
    assert runtime_users.interpreter_of(binary) is None
    assert runtime_users.interpreter_of(tmp_path / "missing") is None


@pytest.mark.skipif(os.geteuid() != 0, reason="runtime users exist only when the platform runs as root")
def test_a_runtime_its_user_cannot_reach_is_bridged_through_a_system_interpreter(settings):
    """The venv here lives on an interpreter under /root: a runtime uid cannot run it, so the
    backend builds MOLECULE_HOME/runtime-env once and runs the same installed runtime through it."""
    home = Path(tempfile.mkdtemp(prefix="molecule-bridge-"))  # pytest's tmp_path is closed to other users
    home.chmod(0o755)
    settings.MOLECULE_HOME = home
    uid = settings.LOCAL_RUNTIME_UID_BASE
    default = Path(local.runtime_executable())
    bridged = runtime_users.runnable_runtime(default, uid)
    if not runtime_users._blocked(default, uid):
        assert bridged == default  # nothing to bridge on a machine whose interpreter is public
        return
    assert bridged == home / runtime_users.BRIDGE_DIR / "bin" / "molecule-runtime"
    assert not runtime_users._blocked(bridged, uid)
    assert runtime_users.runnable_runtime(default, uid) == bridged  # built once, then reused
    imported = subprocess.run(
        [str(bridged.parent / "python"), "-c", "import molecule_runtime.main, httpx; print('ok')"],
        user=uid, group=uid, extra_groups=[], capture_output=True, text=True, timeout=60, cwd="/",
    )
    shutil.rmtree(home)
    assert (imported.returncode, imported.stdout.strip()) == (0, "ok"), imported.stderr


def test_a_runtime_environment_of_its_own_gets_a_bridge_to_its_own_packages(settings):
    """crewai runs from `.molecule/runtime-envs/crewai` (its pins conflict with the project venv): as
    root its bridge reaches that environment's packages, not the platform's; as an ordinary user the
    environment's own `molecule-runtime` is run as it is."""
    own = Path(settings.LOCAL_RUNTIME_ENVS_DIR) / "crewai" / "bin" / "molecule-runtime"
    assert own.is_file(), "make runtime-envs installs it"
    settings.LOCAL_RUNTIME_EXECUTABLE = ""
    assert local.runtime_executable("crewai") == str(own)
    if os.geteuid() != 0:  # no runtime users: nothing to bridge
        assert not runtime_users.isolated()
        return
    home = Path(tempfile.mkdtemp(prefix="molecule-bridge-"))
    home.chmod(0o755)
    settings.MOLECULE_HOME = home
    uid = settings.LOCAL_RUNTIME_UID_BASE
    bridged = runtime_users.runnable_runtime(own, uid)
    if not runtime_users._blocked(own, uid):
        assert bridged == own
        return
    assert bridged == home / f"{runtime_users.BRIDGE_DIR}-crewai" / "bin" / "molecule-runtime"
    private = home / "private"  # the runtime's own HOME, as the backend gives it (crewai writes ~/.local)
    private.mkdir()
    os.chown(private, uid, uid)
    imported = subprocess.run(
        [str(bridged.parent / "python"), "-c", "import crewai, molecule_runtime.main; print('ok')"],
        user=uid, group=uid, extra_groups=[], capture_output=True, text=True, timeout=120, cwd="/",
        env={"PATH": "/usr/bin:/bin", "HOME": str(private), "CREWAI_DISABLE_TELEMETRY": "true", "OTEL_SDK_DISABLED": "true"},
    )
    shutil.rmtree(home)
    assert (imported.returncode, imported.stdout.strip()) == (0, "ok"), imported.stderr[-2000:]
