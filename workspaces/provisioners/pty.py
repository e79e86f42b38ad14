"""A shell on a pseudo-terminal: the local-process backend's :class:`TerminalSession` (spec §18).

:meth:`PtySession.spawn` opens a PTY pair and starts the shell on its slave side through
util-linux's ``setsid --ctty``: the shell leads a session of its own with the PTY as its
controlling terminal, so Ctrl-C, job control and SIGWINCH work as in any terminal emulator. (A
plain ``start_new_session`` leaves the session without a controlling terminal — ``bash -i``
then says "no job control" and ^C reaches nobody — and setting one in ``preexec_fn`` is not safe
in the platform's threaded processes.) ``setsid`` is not forked by it: it calls ``setsid()`` and
execs, so the shell keeps the pid we started.

With ``uid`` the shell runs as that user with its own group and no supplementary groups (as the
local backend runs runtimes: ``runtime_users``), and the slave device is chowned to it, as a
login would.

The master side is non-blocking; :meth:`read` and :meth:`write` wait with ``poll`` on it and on
a wake-up pipe, so :meth:`close` from another thread releases a reader or writer at once. The
master is closed only once no call is using it any more (a closed number could otherwise be
reused by another open and read in its place).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import select
import shutil
import signal
import struct
import subprocess
import termios
import threading
from pathlib import Path

import psutil

from workspaces.provisioners.base import TerminalSession, TerminalUnavailable

log = logging.getLogger(__name__)

DEFAULT_COLS, DEFAULT_ROWS = 80, 24
DEFAULT_TERM = "xterm-256color"  # the canvas's terminal is xterm.js
# How long a closed shell has to exit after SIGHUP before its process group is killed.
HANGUP_GRACE_SECONDS = 1.0
# A reader with nothing to read looks this often whether the shell itself has exited (a
# background job that keeps the slave open must not keep the session open after ``exit``).
EXIT_CHECK_SECONDS = 0.5
_SETSID_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"


def _setsid() -> str:
    found = shutil.which("setsid", path=_SETSID_PATH)
    if found is None:
        raise TerminalUnavailable(503, "terminal not available: setsid (util-linux) is not installed")
    return found


def _identity(uid: int | None) -> dict:
    """Popen's arguments for running as ``uid``: its own group, none of ours; private files."""
    if uid is None:
        return {}
    return {"user": uid, "group": uid, "extra_groups": [], "umask": 0o077}


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class PtySession(TerminalSession):
    """An interactive shell on a PTY that this process started (see the module docstring)."""

    def __init__(self, process: subprocess.Popen, master: int):
        self._process = process
        self._master = master
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._lock = threading.Lock()
        self._closed = False
        self._in_use = 0
        self._released = False

    @classmethod
    def spawn(cls, argv: list[str], *, cwd: Path, env: dict[str, str], uid: int | None = None) -> PtySession:
        """Start ``argv`` (e.g. ``["/bin/bash", "-i"]``) on a new PTY in ``cwd`` with exactly
        ``env`` (plus ``TERM`` when it has none), as ``uid`` when given. Raises OSError when the
        program cannot be started, :class:`TerminalUnavailable` without ``setsid``."""
        if not argv:
            raise ValueError("argv must name the shell to run")
        setsid = _setsid()
        # setsid would start and then fail to exec a missing shell: say so here instead.
        if shutil.which(argv[0], path=env.get("PATH", os.defpath)) is None:
            raise FileNotFoundError(errno.ENOENT, "shell not found", argv[0])
        master, slave = os.openpty()
        try:
            _set_size(slave, DEFAULT_COLS, DEFAULT_ROWS)
            if uid is not None:
                os.fchown(slave, uid, -1)  # the terminal belongs to its user (write, mesg, /dev/tty)
            process = subprocess.Popen(
                [setsid, "--ctty", *argv], cwd=str(cwd), env={"TERM": DEFAULT_TERM, **env},
                stdin=slave, stdout=slave, stderr=slave, close_fds=True, **_identity(uid),
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        session = cls(process, master)
        log.debug("pty: started %s as pid %d%s", argv[0], process.pid, f" (uid {uid})" if uid is not None else "")
        return session

    @property
    def pid(self) -> int:
        """The shell's pid (the leader of its session and process group)."""
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.poll()

    # --- the master fd, used by one call at a time per direction, closed after the last --------------

    def _enter(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._in_use += 1
            return True

    def _leave(self) -> None:
        with self._lock:
            self._in_use -= 1
            release = self._closed and self._in_use == 0 and not self._released
            if release:
                self._released = True
        if release:
            self._release_fds()

    def _release_fds(self) -> None:
        for fd in (self._master, self._wake_read, self._wake_write):
            try:
                os.close(fd)
            except OSError:
                pass

    def _wait(self, events: int, timeout_ms: int | None) -> bool:
        """True when the master is ready for ``events``; False when woken by :meth:`close` or
        when ``timeout_ms`` passed."""
        poller = select.poll()
        poller.register(self._master, events)
        poller.register(self._wake_read, select.POLLIN)
        ready = dict(poller.poll(timeout_ms))
        if self._wake_read in ready or self._closed:
            return False
        return self._master in ready

    # --- the port ----------------------------------------------------------------------------------------

    def read(self, max_bytes: int = 65536) -> bytes:
        """The next output of the shell, blocking; ``b""`` once it has exited or the session closed."""
        if not self._enter():
            return b""
        try:
            while True:
                if not self._wait(select.POLLIN, int(EXIT_CHECK_SECONDS * 1000)):
                    if self._closed:
                        return b""
                    if self._process.poll() is not None:
                        return self._read_now(max_bytes)  # what the shell wrote last, then EOF
                    continue
                try:
                    return os.read(self._master, max_bytes)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    if exc.errno == errno.EIO:  # every slave fd is closed: the shell is gone
                        return b""
                    raise
        finally:
            self._leave()

    def _read_now(self, max_bytes: int) -> bytes:
        try:
            return os.read(self._master, max_bytes)
        except OSError:  # nothing left (EAGAIN) or the slave is closed (EIO)
            return b""

    def write(self, data: bytes) -> None:
        """Keystrokes for the shell, all of them (waits while its input buffer is full). Writing
        to a shell that has exited or a closed session does nothing: there is no one to read it."""
        if not data or not self._enter():
            return
        try:
            view = memoryview(data)
            while view:
                try:
                    written = os.write(self._master, view)
                except BlockingIOError:
                    if not self._wait(select.POLLOUT, None):
                        return
                    continue
                except OSError as exc:
                    if exc.errno == errno.EIO:
                        return
                    raise
                view = view[written:]
        finally:
            self._leave()

    def resize(self, cols: int, rows: int) -> None:
        """Set the window size; the kernel sends SIGWINCH to the shell's foreground job."""
        if not self._enter():
            return
        try:
            _set_size(self._master, cols, rows)
        except OSError:
            log.debug("pty: resize of pid %d failed", self.pid, exc_info=True)
        finally:
            self._leave()

    def close(self) -> None:
        """Hang up: SIGHUP (and SIGCONT, for stopped jobs) to every process of the shell's
        session, SIGKILL to its process group if the shell is still there after
        ``HANGUP_GRACE_SECONDS``, reap it, close the fds. Idempotent. Processes that ignore the
        hang-up (``nohup``) survive it, as they would closing any terminal."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle = self._in_use == 0
            if idle:
                self._released = True
        try:
            os.write(self._wake_write, b"x")  # wakes a read or write waiting in poll
        except OSError:
            pass
        try:
            self._hang_up()
        finally:
            if idle:
                self._release_fds()

    def _hang_up(self) -> None:
        leader = self._process.pid
        if self._process.poll() is None:
            for pid in _session_members(leader):
                for sig in (signal.SIGHUP, signal.SIGCONT):
                    try:
                        os.kill(pid, sig)
                    except OSError:
                        pass
            try:
                self._process.wait(timeout=HANGUP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(leader, signal.SIGKILL)
                except OSError:
                    pass
                self._process.wait()
        log.debug("pty: pid %d ended with %s", leader, self._process.returncode)


def _session_members(sid: int) -> list[int]:
    """Every process of session ``sid``: jobs of an interactive shell run in process groups of
    their own, so the shell's group alone would miss them."""
    members = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == sid:
                members.append(pid)
        except OSError:
            continue
    return members
