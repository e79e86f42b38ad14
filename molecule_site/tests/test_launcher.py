"""``make run`` end to end: embedded servers, migrate, operator, web + worker + beat, clean stop."""

import os
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
from django.conf import settings

from molecule_site import embedded
from molecule_site.tests.launch import Launch, free_port


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def test_run_starts_everything_stops_cleanly_and_reuses_data(tmp_path):
    port = free_port()
    first = Launch(tmp_path, port, MOLECULE_PROVISIONER="local")  # the launcher, not Docker, is under test
    try:
        first.wait_for("Molecule platform on", "launcher: ready", "celery@", "beat: Starting")
        assert "Created operator account 'admin' with password" in first.output
        assert f"canvas:  http://localhost:{port}/  (log in as the operator)" in first.output
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

    second = Launch(tmp_path, port, MOLECULE_PROVISIONER="local")
    try:
        second.wait_for("Molecule platform on", "launcher: ready")
        assert "Created operator account" not in second.output  # same database, operator kept
    finally:
        assert second.stop() == 0


def serve_children(pid: int) -> list[psutil.Process]:
    return [p for p in psutil.Process(pid).children() if "molecule_site.serve" in " ".join(p.cmdline())]


def test_web_tier_alone_serves_on_one_port_from_several_processes(tmp_path):
    """The container command: only the web processes, on the services given by URL."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "2", "MOLECULE_HOME": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "molecule_site.launcher", "web"], cwd=settings.BASE_DIR, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "launcher: ready" in line:
                break
        assert "launcher: ready: 2 web processes" in "".join(lines), "".join(lines)
        assert get(f"http://127.0.0.1:{port}/health") == (200, b'{"status":"ok"}')
        deadline = time.monotonic() + 30
        while len(servers := serve_children(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(servers) == 2
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in servers)
