"""The terminal over ``docker exec`` with a TTY (spec §18)."""

from __future__ import annotations

import re
import threading
import time

import pytest

from workspaces.provisioners.base import TerminalUnavailable
from workspaces.provisioners.docker import DockerProvisioner, container_name
from workspaces.tests.docker.conftest import run


class Screen:
    """Collects what the session prints, from a reader thread (as the WebSocket consumer does)."""

    def __init__(self, session):
        self.session, self.data, self.ended = session, b"", threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        while chunk := self.session.read():
            self.data += chunk
        self.ended.set()

    def wait_for(self, pattern: str, timeout: float = 15) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.data.decode(errors="replace"))
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} not seen; the screen shows:\n{self.data.decode(errors='replace')}")


def sessions_left(engine, workspace) -> int:
    """Processes of terminal sessions still running in the container."""
    count = ("import os\nfound = 0\nfor p in filter(str.isdigit, os.listdir('/proc')):\n"
             "    try:\n        found += b'MOLECULE_TERMINAL=' in open('/proc/%s/environ' % p, 'rb').read()\n"
             "    except OSError:\n        pass\nprint(found)")
    code, output = run(engine, workspace, "python3", "-c", count)
    assert code == 0, output
    return int(output)


def test_the_terminal_runs_commands_and_resizes(provisioner, running, engine):
    session = provisioner.exec_terminal(running)
    screen = Screen(session)
    assert sessions_left(engine, running) == 1
    try:
        session.write(b"echo answer-$((6 * 7)) in $PWD as $(id -un)\n")
        screen.wait_for(r"answer-42 in /workspace as agent")
        session.resize(cols=101, rows=33)
        session.write(b"stty size\n")
        screen.wait_for(r"\b33 101\b")
        assert "bash" in screen.data.decode(errors="replace") or run(engine, running, "test", "-x", "/bin/bash")[0] == 0
    finally:
        session.close()
    assert screen.ended.wait(10)  # reads end once the session is closed
    session.close()  # idempotent
    deadline = time.monotonic() + 10
    while sessions_left(engine, running) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sessions_left(engine, running) == 0  # no shell stays behind in the container


def test_exit_ends_the_session(provisioner, running):
    session = provisioner.exec_terminal(running)
    screen = Screen(session)
    session.write(b"exit\n")
    assert screen.ended.wait(10)
    session.close()


def test_no_container_and_a_stopped_one_answer_404(provisioner, make_workspace, running):
    with pytest.raises(TerminalUnavailable) as missing:
        provisioner.exec_terminal(make_workspace())
    assert (missing.value.status, missing.value.error) == (404, "container not running")
    provisioner.stop(running)
    with pytest.raises(TerminalUnavailable) as stopped:
        provisioner.exec_terminal(running)
    assert (stopped.value.status, stopped.value.error) == (404, "container not running")


def test_no_engine_answers_503(make_workspace, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(TerminalUnavailable) as unavailable:
        DockerProvisioner().exec_terminal(make_workspace())
    assert (unavailable.value.status, unavailable.value.error) == (503, "Docker not available")


def test_without_bash_the_terminal_falls_back_to_sh(provisioner, running, engine):
    run(engine, running, "mv", "/bin/bash", "/bin/bash.away", user="0")
    session = provisioner.exec_terminal(running)
    screen = Screen(session)
    try:
        session.write(b"echo shell=$0\n")
        screen.wait_for(r"shell=/bin/sh")
    finally:
        session.close()
    assert container_name(running.id)
