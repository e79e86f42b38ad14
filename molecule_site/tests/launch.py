"""Starts the whole platform (``molecule_site.launcher``, as ``make run`` does) for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from django.conf import settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Launch:
    """A launcher process whose combined output is collected line by line."""

    def __init__(self, home, port: int, **env_overrides: str):
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"} and not k.startswith("MOLECULE_")}
        env.update(MOLECULE_HOME=str(home), PORT=str(port), **env_overrides)
        self.port = port
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "molecule_site.launcher"], cwd=settings.BASE_DIR, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, *needles: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not all(n in self.output for n in needles):
            assert self.process.poll() is None, f"launcher exited early:\n{self.output}"
            assert time.monotonic() < deadline, f"timed out waiting for {needles}:\n{self.output}"
            time.sleep(0.2)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)
