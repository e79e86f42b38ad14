"""``make run`` end to end: embedded servers, migrate, operator, web + worker + beat, clean stop."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from django.conf import settings

from molecule_site import embedded


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Launch:
    """A launcher process whose combined output is collected line by line."""

    def __init__(self, home, port):
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"} and not k.startswith("MOLECULE_")}
        env.update(MOLECULE_HOME=str(home), PORT=str(port))
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "molecule_site.launcher"], cwd=settings.BASE_DIR, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

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
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def test_run_starts_everything_stops_cleanly_and_reuses_data(tmp_path):
    port = free_port()
    first = Launch(tmp_path, port)
    try:
        first.wait_for("Molecule platform on", "Listening on TCP address", "celery@", "beat: Starting")
        assert "Created operator account 'admin' with password" in first.output
        assert f"admin:   http://localhost:{port}/django-admin/" in first.output
        assert get(f"http://127.0.0.1:{port}/health") == (200, b'{"status":"ok"}')
        status, body = get(f"http://127.0.0.1:{port}/django-admin/login/")
        assert status == 200 and b'name="password"' in body
    finally:
        code = first.stop()
    assert code == 0, first.output
    assert "launcher: stopping" in first.output
    redis_port = int((tmp_path / "redis" / "redis.port").read_text())
    assert not embedded._redis_ping(redis_port)
    assert not embedded._postgres_running(embedded._pgdata(tmp_path))

    second = Launch(tmp_path, port)
    try:
        second.wait_for("Molecule platform on", "Listening on TCP address")
        assert "Created operator account" not in second.output  # same database, operator kept
    finally:
        assert second.stop() == 0
