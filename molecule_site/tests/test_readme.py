"""README.md, followed in order by a new user, works: every shell block in it is run here.

Setup's ``make run`` starts the whole platform exactly as a user would (embedded PostgreSQL and
Redis in a fresh MOLECULE_HOME, local runtimes); "Try it" runs as written — with the admin token
``make run`` generated, waiting for the team — and gets the demo PM's answer; "External agents"
runs our runtime on its connection block and the workspace comes online. Only the port and the
placeholders the README asks the reader to fill in are substituted.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from molecule_site.tests.launch import free_port

pytestmark = [pytest.mark.slow]

README = Path(settings.BASE_DIR) / "README.md"


def shell_blocks(section: str) -> list[str]:
    """The ```sh blocks of README's ``## <section>``."""
    text = README.read_text()
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```sh\n(.*?)```", text[start:end if end != -1 else None], re.S)


def commands(block: str) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in block.replace("\\\n", " ").splitlines()]
    return [line for line in lines if line]


@pytest.fixture
def workdir():
    """A directory laid out like a checkout as the user sees it (``.venv``, ``manage.py``), with a
    MOLECULE_HOME of its own; in /tmp so the runtimes' own users can reach it when we are root."""
    directory = Path(tempfile.mkdtemp(prefix="molecule-readme-"))
    directory.chmod(0o755)
    for name in (".venv", "manage.py"):
        (directory / name).symlink_to(Path(settings.BASE_DIR) / name)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def user_environment(workdir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "ADMIN_TOKEN"} and not k.startswith(("MOLECULE_", "DJANGO_"))}
    return {**env, "MOLECULE_HOME": str(workdir / ".molecule"), "PORT": str(port)}


def test_setup_is_exactly_the_two_commands():
    [setup] = shell_blocks("Setup")
    assert commands(setup) == ["make run", "make test"]
    dry_run = subprocess.run(["make", "-n", "test"], cwd=settings.BASE_DIR, capture_output=True, text=True, check=True)
    assert "-m pytest" in dry_run.stdout  # what CI runs (.ci/run calls make test)


def test_readme_followed_in_order_works_against_make_run(workdir):
    port = free_port()
    env = user_environment(workdir, port)
    make_run = subprocess.Popen(["make", "run"], cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output: list[str] = []
    try:
        deadline = time.monotonic() + 180
        for line in make_run.stdout:
            output.append(line)
            if "launcher: ready" in line or time.monotonic() > deadline:
                break
        printed = "".join(output)
        assert "launcher: ready" in printed, printed
        token = (workdir / ".molecule" / "admin_token").read_text().strip()
        assert f"ADMIN_TOKEN={token}" in printed and "with password" in printed  # what the user is told
        assert "Error" not in printed and "Traceback" not in printed, printed

        # "Try it", as written, from the user's directory
        [try_it] = shell_blocks("Try it")
        script = try_it.replace("localhost:8080", f"localhost:{port}")
        ran = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=workdir, env=env,
                             capture_output=True, text=True, timeout=240)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "online: Demo Researcher, Demo Writer, PM" in ran.stdout, ran.stdout
        assert "PM: hello" in ran.stdout, ran.stdout

        external_agent_joins(workdir, env, port, token)
    finally:
        os.killpg(make_run.pid, signal.SIGINT)
        try:
            make_run.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(make_run.pid, signal.SIGKILL)
            raise


def external_agent_joins(workdir: Path, env: dict, port: int, admin_token: str) -> None:
    """"External agents": step 1's request, then the block with the connection block filled in."""
    api = f"http://127.0.0.1:{port}"
    created = httpx.post(f"{api}/workspaces", json={"name": "Analyst", "external": True},
                         headers={"Authorization": f"Bearer {admin_token}"}, timeout=30).json()
    connection = created["connection"]
    [block] = shell_blocks("External agents")
    install, run = commands(block)
    assert install == "pip install ./runtime" and (Path(settings.BASE_DIR) / "runtime" / "pyproject.toml").is_file()
    # the runtime this checkout installed in .venv is what `pip install ./runtime` gives
    agent = workdir / "my-agent"
    agent.mkdir()
    (agent / "config.yaml").write_text("name: Analyst\nruntime: echo\n")
    agent_port = free_port()
    filled = (run.replace("<workspace_id>", connection["workspace_id"])
                 .replace("<platform_url>", connection["platform_url"])
                 .replace("<auth_token>", connection["auth_token"])
                 .replace("<inbound_secret>", connection["inbound_secret"])
                 .replace("https://agent.example.com:8000", f"http://localhost:{agent_port}")
                 .replace("PORT=8000", f"PORT={agent_port}"))
    bin_dir = Path(sys.executable).parent
    runtime = subprocess.Popen(["bash", "-c", filled], cwd=workdir, env={**env, "PATH": f"{bin_dir}:{env['PATH']}"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while httpx.get(f"{api}/workspaces/{connection['workspace_id']}", timeout=10).json()["status"] != "online":
            assert runtime.poll() is None, runtime.stdout.read()
            assert time.monotonic() < deadline, "the external agent did not come online"
            time.sleep(0.5)
    finally:
        os.killpg(runtime.pid, signal.SIGTERM)
        runtime.wait(timeout=30)
