"""``PtySession`` (workspaces/provisioners/pty.py): a real shell on a real PTY, no Django needed."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import psutil
import pytest

from molecule_site.tests.launch import wait_until
from workspaces.provisioners.pty import PtySession

SHELL = ["/bin/bash", "--norc", "--noprofile", "-i"]
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "PS1": "$ ", "LANG": "C.UTF-8"}
# A uid with no passwd entry, as the local backend gives runtimes when the platform runs as root.
STRANGER_UID = 64123


class Screen:
    """Everything a session printed, read by a thread as a terminal emulator would."""

    def __init__(self, session: PtySession):
        self.session = session
        self.chunks: list[bytes] = []
        self.eof = threading.Event()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        while True:
            data = self.session.read()
            if not data:
                self.eof.set()
                return
            self.chunks.append(data)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 10) -> re.Match:
        return wait_until(lambda: re.search(pattern, self.text), timeout=timeout, what=f"{pattern!r} in {self.text[-400:]!r}")

    def run(self, command: str, pattern: str, timeout: float = 10) -> re.Match:
        self.session.write(command.encode() + b"\n")
        return self.wait_for(pattern, timeout)


@pytest.fixture
def shell(tmp_path):
    sessions = []

    def start(argv=SHELL, *, cwd=tmp_path, env=ENV, uid=None) -> Screen:
        session = PtySession.spawn(argv, cwd=cwd, env=env, uid=uid)
        sessions.append(session)
        return Screen(session)

    yield start
    for session in sessions:
        session.close()


def _ptmx_fds() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == "/dev/ptmx":
                count += 1
        except OSError:
            continue
    return count


def test_a_command_typed_into_the_shell_prints_its_output(shell):
    screen = shell()
    # The echoed command line holds "$((6*7))", only the output holds "42".
    screen.run("echo hello-$((6*7))", r"hello-42")


def test_the_shell_runs_in_cwd_with_exactly_the_given_environment(shell, tmp_path, monkeypatch):
    monkeypatch.setenv("PLATFORM_SECRET_FOR_TEST", "leaked")
    screen = shell(env={**ENV, "GREETING": "from-env"})
    screen.run("pwd; echo greeting=$GREETING secret=[$PLATFORM_SECRET_FOR_TEST] term=$TERM", r"secret=\[\]")
    assert str(tmp_path) in screen.text
    assert "greeting=from-env" in screen.text
    assert "term=xterm-256color" in screen.text


def test_the_pty_is_the_controlling_terminal_so_ctrl_c_interrupts_the_foreground_job(shell):
    screen = shell()
    screen.run("tty; echo sid=$(ps -o sid= $$) pid=$$", r"sid=\s*(\d+) pid=(\d+)")
    sid, pid = re.search(r"sid=\s*(\d+) pid=(\d+)", screen.text).groups()
    assert sid == pid == str(screen.session.pid)  # the shell leads its own session
    assert re.search(r"/dev/pts/\d+", screen.text)
    assert "no job control" not in screen.text
    screen.session.write(b"sleep 30\n")
    time.sleep(0.5)
    screen.session.write(b"\x03")  # ^C: the line discipline signals the foreground job
    screen.run("echo after-$((1+1))", r"after-2", timeout=5)


def test_resize_changes_the_window_size_the_shell_sees(shell):
    screen = shell()
    screen.run("stty size", r"\b24 80\b")  # the default, set before the shell starts
    screen.session.resize(132, 41)
    screen.run("stty size", r"\b41 132\b")


def test_exit_ends_the_session_even_with_a_background_job_holding_the_terminal(shell):
    screen = shell()
    screen.run("sleep 60 & echo started-$((2+3))", r"started-5")
    screen.session.write(b"exit\n")
    assert screen.eof.wait(10), screen.text
    assert screen.session.returncode is not None


def test_close_hangs_up_the_shell_and_its_jobs_and_releases_a_blocked_reader(shell):
    screen = shell()
    job = int(screen.run("sleep 600 & echo job=$!", r"job=(\d+)").group(1))
    screen.session.write(b"sleep 600\n")  # a foreground job too
    time.sleep(0.3)
    started = time.monotonic()
    screen.session.close()
    assert screen.eof.wait(5), "the reader was not released by close()"
    assert time.monotonic() - started < 5
    assert screen.session.returncode is not None
    wait_until(lambda: not psutil.pid_exists(job) or psutil.Process(job).status() == psutil.STATUS_ZOMBIE,
               timeout=5, what="the background job to end")
    screen.session.close()  # idempotent
    assert screen.session.read() == b""
    screen.session.write(b"ignored\n")  # no one to read it: a no-op, not an error
    screen.session.resize(10, 10)


def test_a_shell_that_ignores_the_hang_up_is_killed(shell):
    screen = shell(["/bin/sh", "-c", "trap '' HUP TERM; echo ready; while :; do sleep 0.1; done"])
    screen.wait_for("ready")
    started = time.monotonic()
    screen.session.close()
    assert screen.session.returncode is not None
    assert time.monotonic() - started < 4


def test_spawn_and_close_leave_no_file_descriptor_behind(shell):
    before = _ptmx_fds()
    for _ in range(10):
        screen = shell(["/bin/sh", "-c", "echo hi; sleep 5"])
        screen.wait_for("hi")
        screen.session.close()
        screen.thread.join(5)
    assert _ptmx_fds() == before


def test_a_missing_shell_raises_and_leaks_nothing(tmp_path):
    before = _ptmx_fds()
    with pytest.raises(OSError):
        PtySession.spawn(["/nonexistent/shell"], cwd=tmp_path, env=ENV)
    with pytest.raises(ValueError):
        PtySession.spawn([], cwd=tmp_path, env=ENV)
    assert _ptmx_fds() == before


@pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                    reason="switching uid needs root (CI runs as root, and there it must run)")
def test_with_a_uid_the_shell_runs_as_that_user_with_its_own_group_only(shell, tmp_path):
    home = tmp_path / "private"
    home.mkdir()
    os.chown(home, STRANGER_UID, STRANGER_UID)
    home.chmod(0o700)
    screen = shell(cwd=home, uid=STRANGER_UID)
    screen.run("echo ids=$(id -u):$(id -g):$(id -G) mask=$(umask); touch made; stat -c owner=%u $(tty)", r"owner=\d+")
    assert f"ids={STRANGER_UID}:{STRANGER_UID}:{STRANGER_UID} " in screen.text
    assert "mask=0077" in screen.text
    assert f"owner={STRANGER_UID}" in screen.text
    assert (home / "made").stat().st_uid == STRANGER_UID
    screen.run("cat /proc/1/environ >/dev/null 2>&1 && echo read-init || echo denied-$((3*3))", r"denied-9|\nread-init")
    assert "denied-9" in screen.text


def test_keystrokes_larger_than_the_tty_buffer_are_all_delivered(shell, tmp_path):
    target = Path(tmp_path) / "out.txt"
    screen = shell(["/bin/sh", "-c", f"stty -icanon -echo; echo ready; head -c 200000 > {target}; echo done-$((5*5))"])
    screen.wait_for("ready")  # raw mode first: a canonical line holds at most 4 KiB
    screen.session.write(b"x" * 200_000)  # several times what the PTY buffers: write waits for the reader
    screen.wait_for("done-25", timeout=15)
    assert target.stat().st_size == 200_000
