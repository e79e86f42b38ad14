"""The rules behind the local runtimes' users: the uid range, reachability, interpreters."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from workspaces.provisioners import runtime_users

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
