"""The `molecule-runtime` process end to end against the fake platform (real processes, loopback)."""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from molecule_runtime.main import advertised_url

from .a2a_helpers import msg03, rpc, send03
from .conftest import free_port, write_config, write_skill

WS = "22222222-2222-4222-8222-222222222222"
# variables a developer's shell may carry that would change what the runtime under test does
SHELL_ONLY_ENV = ("ADAPTER_MODULE", "MOLECULE_SMOKE_MODE", "AGENT_URL", "MOLECULE_INBOUND_SECRET")


def _wait(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_advertised_url():
    assert advertised_url({}, "", 8000) == "http://127.0.0.1:8000"
    assert advertised_url({}, "0.0.0.0", 8001) == "http://127.0.0.1:8001"
    assert advertised_url({}, "10.1.2.3", 8002) == "http://10.1.2.3:8002"
    assert advertised_url({"AGENT_URL": "http://agent.example:9/"}, "0.0.0.0", 8000) == "http://agent.example:9"


def test_runtime_registers_serves_heartbeats_hot_reloads_and_stops_on_sigterm(tmp_path, fake_platform):
    configs = write_config(tmp_path / "configs", """
        name: Echo Worker
        description: answers
        runtime: echo
        skills: [lookup]
    """)
    (configs / "system-prompt.md").write_text("You echo.")
    write_skill(configs, "lookup", "name: Lookup\ndescription: v1\n", "def lookup(q):\n    return 'v1:' + q\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SHELL_ONLY_ENV}
    env.update(WORKSPACE_ID=WS, WORKSPACE_CONFIG_PATH=str(configs), PLATFORM_URL=fake_platform.base_url,
               PORT=str(port), HOST="127.0.0.1", HEARTBEAT_INTERVAL="0.3", SKILLS_POLL_INTERVAL="0.05",
               SKILLS_DEBOUNCE="0.05", DELEGATION_RESULTS_FILE=str(tmp_path / "delegations.jsonl"),
               LOG_LEVEL="INFO")
    proc = subprocess.Popen([sys.executable, "-m", "molecule_runtime.main"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: WS in fake_platform.registered, what="registration")
        reg = fake_platform.registered[WS]
        assert reg["url"] == url
        card = reg["agent_card"]
        assert card["name"] == "Echo Worker" and card["url"] == url
        assert card["skills"] == [{"id": "lookup", "name": "Lookup", "description": "v1", "tags": []}]
        assert card["configuration_status"] == "ready"

        token_file = configs / ".auth_token"
        _wait(token_file.exists, what="token file")
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text()

        # heartbeats: immediate first beat, then on the interval, with the bearer token
        _wait(lambda: len(fake_platform.requests_to("/registry/heartbeat")) >= 2, what="heartbeats")
        beat = fake_platform.requests_to("/registry/heartbeat")[-1]
        assert beat.headers["authorization"] == f"Bearer {token}"
        assert beat.json["workspace_id"] == WS

        # A2A: the card and a reply, and a skill tool through /tool
        assert httpx.get(url + "/.well-known/agent.json").json()["name"] == "Echo Worker"
        assert send03(url, "ping")["parts"][0]["text"] == "echo: ping"
        assert send03(url, '/tool lookup {"q": "x"}')["parts"][0]["text"] == '"v1:x"'

        # hot reload: edit the skill → update-card pushed with the new metadata, new tool code used
        time.sleep(0.3)
        write_skill(configs, "lookup", "name: Lookup\ndescription: v2\n", "def lookup(q):\n    return 'v2:' + q\n")
        _wait(lambda: fake_platform.requests_to("/registry/update-card"), what="update-card")
        update = fake_platform.requests_to("/registry/update-card")[-1]
        assert update.headers["authorization"] == f"Bearer {token}"
        assert update.json["agent_card"]["skills"][0]["description"] == "v2"
        assert send03(url, '/tool lookup {"q": "x"}')["parts"][0]["text"] == '"v2:x"'
        served = httpx.get(url + "/.well-known/agent-card.json").json()
        assert served["skills"][0]["description"] == "v2"

        # /transcript: bearer check fails closed
        assert httpx.get(url + "/transcript").status_code == 401
        assert httpx.get(url + "/transcript", headers={"Authorization": "Bearer wrong"}).status_code == 401
        transcript = httpx.get(url + "/transcript?since=0&limit=2",
                               headers={"Authorization": f"Bearer {token}"}).json()
        assert transcript["supported"] is True and transcript["more"] is True
        assert [(l["role"], l["text"]) for l in transcript["lines"]] == [("user", "ping"), ("agent", "echo: ping")]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
    assert "runtime stopped" in out


PROBE_TOOL = """
import json, os, subprocess, sys

NAMES = ["OPENAI_API_KEY", "GITHUB_TOKEN", "MOLECULE_AUTH_TOKEN", "MOLECULE_INBOUND_SECRET"]
CHILD = "import json, os, sys; print(json.dumps({n: os.environ.get(n) for n in sys.argv[1:]}))"

def probe():
    child = subprocess.run([sys.executable, "-c", CHILD, *NAMES], capture_output=True, text=True, check=True)
    with open("/proc/self/environ", "rb") as fh:
        initial = fh.read()
    return {"os_environ": {n: os.environ.get(n) for n in NAMES}, "child": json.loads(child.stdout),
            "in_proc_self_environ": [n for n in NAMES if os.environ.get(n, "").encode() in initial]}
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/<pid>/environ is Linux's")
def test_secret_env_is_erased_from_proc_environ_but_the_runtime_and_its_children_keep_it(tmp_path, fake_platform):
    secrets = {"OPENAI_API_KEY": "sk-proc-environ-test-0001", "GITHUB_TOKEN": "ghp-proc-environ-test-0002",
               "MOLECULE_AUTH_TOKEN": "tok-proc-environ-test-0003",
               "MOLECULE_INBOUND_SECRET": "inbound-proc-environ-test-0004"}
    configs = write_config(tmp_path / "configs", "name: Env Probe\nruntime: echo\nskills: [probe]\n")
    write_skill(configs, "probe", "name: Probe\n", PROBE_TOOL)
    fake_platform.tokens[WS] = {secrets["MOLECULE_AUTH_TOKEN"]}
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SHELL_ONLY_ENV}
    env.update(WORKSPACE_ID=WS, WORKSPACE_CONFIG_PATH=str(configs), PLATFORM_URL=fake_platform.base_url,
               PORT=str(port), HOST="127.0.0.1", DELEGATION_RESULTS_FILE=str(tmp_path / "d.jsonl"), **secrets)
    proc = subprocess.Popen([sys.executable, "-m", "molecule_runtime.main"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: WS in fake_platform.registered, what="registration")
        initial = Path(f"/proc/{proc.pid}/environ").read_bytes()
        for name, value in secrets.items():
            assert value.encode() not in initial, name
        assert f"WORKSPACE_ID={WS}".encode() in initial.split(b"\0")  # the rest of the block is intact

        # the runtime itself still has them: it registered with the platform token, and guards
        # JSON-RPC with the inbound secret
        [register] = fake_platform.requests_to("/registry/register")
        assert register.headers["authorization"] == f"Bearer {secrets['MOLECULE_AUTH_TOKEN']}"
        assert httpx.post(url + "/", json={"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {
            "message": msg03("hi")}}).status_code == 401

        # so do skill tools at call time and the processes they start; /proc/self/environ shows
        # the values to neither
        out = rpc(url, "message/send", {"message": msg03("/tool probe {}")},
                  headers={"X-Molecule-Inbound-Secret": secrets["MOLECULE_INBOUND_SECRET"]})
        probe = json.loads(out["result"]["parts"][0]["text"])
        assert probe == {"os_environ": secrets, "child": secrets, "in_proc_self_environ": []}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            log, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            log, _ = proc.communicate()
    assert proc.returncode == 0, log
    [erased] = [line.split("environ: ", 1)[1] for line in log.splitlines() if "erased from /proc/self/environ" in line]
    assert set(erased.split(", ")) == set(secrets)
    assert not any(value in log for value in secrets.values())


def test_setup_failure_still_serves_the_card_and_reports_not_configured(tmp_path, fake_platform):
    configs = write_config(tmp_path / "configs", """
        name: Echo Agent
        runtime: echo
        initial_prompt: start working
        idle_prompt: anything to do?
        idle_interval_seconds: 1
    """)
    (tmp_path / "bad_setup_adapter.py").write_text(
        "from molecule_runtime.adapters.echo import Adapter as _Echo\n"
        "class Adapter(_Echo):\n"
        "    async def setup(self, config):\n"
        "        raise RuntimeError('missing OPENAI_API_KEY')\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SHELL_ONLY_ENV}
    env.update(WORKSPACE_ID=WS, WORKSPACE_CONFIG_PATH=str(configs), PLATFORM_URL=fake_platform.base_url,
               PORT=str(port), HOST="127.0.0.1", ADAPTER_MODULE="bad_setup_adapter", PYTHONPATH=str(tmp_path),
               DELEGATION_RESULTS_FILE=str(tmp_path / "d.jsonl"))
    proc = subprocess.Popen([sys.executable, "-m", "molecule_runtime.main"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: WS in fake_platform.registered, what="registration")
        card = fake_platform.registered[WS]["agent_card"]
        assert card["configuration_status"] == "not_configured"
        assert "missing OPENAI_API_KEY" in card["configuration_error"]
        assert httpx.get(url + "/.well-known/agent-card.json").status_code == 200
        out = httpx.post(url + "/", json={"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {
            "message": {"role": "user", "messageId": "m1", "parts": [{"kind": "text", "text": "hi"}]}}}).json()
        assert out["error"]["code"] == -32603
        assert "agent not configured" in out["error"]["message"]
        time.sleep(1.5)  # an agent that cannot work is given no work of its own
        assert fake_platform.requests_to(f"/workspaces/{WS}/a2a") == []
        assert not (configs / ".initial_prompt_done").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out


class _FlakyClient:
    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.calls = 0

    async def register(self, *, url, agent_card):
        self.calls += 1
        status = self.statuses.pop(0)
        if status is None:
            raise ConnectionError("connection refused")
        if status != 200:
            from molecule_runtime.platform import PlatformError

            raise PlatformError(f"HTTP {status}", status=status)


def test_register_retries_transport_errors_and_5xx_then_succeeds():
    import asyncio

    from molecule_runtime.main import register_with_retry

    client = _FlakyClient([None, 503, 200])
    assert asyncio.run(register_with_retry(client, url="u", agent_card={}, base_delay=0.01)) is True
    assert client.calls == 3


def test_register_gives_up_at_once_on_4xx_and_after_max_attempts():
    import asyncio

    from molecule_runtime.main import register_with_retry

    client = _FlakyClient([400, 200])
    assert asyncio.run(register_with_retry(client, url="u", agent_card={}, base_delay=0.01)) is False
    assert client.calls == 1
    client = _FlakyClient([500] * 3)
    assert asyncio.run(register_with_retry(client, url="u", agent_card={}, attempts=3, base_delay=0.01)) is False
    assert client.calls == 3
