"""The runtime's own initiative (molecule_runtime.autonomy): the initial prompt, the idle loop and
the pre-stop snapshot — in-process against the fake platform, and with real runtime processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import time

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from molecule_runtime import autonomy
from molecule_runtime.adapters.echo import Adapter as EchoAdapter
from molecule_runtime.heartbeat import HeartbeatState

from .a2a_helpers import send03
from .conftest import free_port, write_config
from .test_main import SHELL_ONLY_ENV, _wait

WS = "33333333-3333-4333-8333-333333333333"
SECRET_VALUE = "sk-proj-RuntimeTestSecretValue0123456789"


def _prompts(fake_platform, kind: str) -> list:
    return [r for r in fake_platform.requests_to(f"/workspaces/{WS}/a2a")
            if r.json["params"]["message"]["messageId"].startswith(f"{kind}-")]


# --- the initial prompt: two boots of a real runtime on one config dir ----------------------------------

def _boot(configs, fake_platform, tmp_path, port) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in SHELL_ONLY_ENV}
    env.update(WORKSPACE_ID=WS, WORKSPACE_CONFIG_PATH=str(configs), PLATFORM_URL=fake_platform.base_url,
               PORT=str(port), HOST="127.0.0.1", HEARTBEAT_INTERVAL="0.3", LOG_LEVEL="INFO",
               WORKSPACE_DIR=str(tmp_path / "no-such-workspace-dir"), OPENAI_API_KEY=SECRET_VALUE,
               DELEGATION_RESULTS_FILE=str(tmp_path / "delegations.jsonl"))
    return subprocess.Popen([sys.executable, "-m", "molecule_runtime.main"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    assert proc.returncode == 0, out
    return out


def test_initial_prompt_is_sent_once_across_restarts_and_the_snapshot_carries_the_session(tmp_path, fake_platform):
    configs = write_config(tmp_path / "configs", """
        name: Starter
        runtime: echo
        initial_prompt: Plan the week
    """)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _boot(configs, fake_platform, tmp_path, port)
    try:
        _wait(lambda: _prompts(fake_platform, "initial"), timeout=20, what="the initial prompt")
        sent, = _prompts(fake_platform, "initial")
        message = sent.json["params"]["message"]
        assert message["parts"] == [{"kind": "text", "text": "Plan the week"}]
        assert message["metadata"]["kind"] == "initial_prompt"
        assert sent.headers["x-workspace-id"] == WS
        assert sent.headers["authorization"] == f"Bearer {(configs / '.auth_token').read_text()}"
        _wait(lambda: (configs / autonomy.MARKER_FILE).exists() and
              (configs / autonomy.MARKER_FILE).read_text() == "sent", what="the marker")
        # something secret in the transcript, which the snapshot must not keep
        assert send03(url, f"remember {SECRET_VALUE} and GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwx")
    finally:
        out = _stop(proc)
    assert "pre-stop snapshot written" in out

    snapshot_file = configs / autonomy.SNAPSHOT_FILE
    raw = snapshot_file.read_text()
    assert stat.S_IMODE(snapshot_file.stat().st_mode) == 0o600
    assert SECRET_VALUE not in raw and "ghp_abcdefghijklmnopqrstuvwx" not in raw
    snapshot = json.loads(raw)
    assert snapshot["workspace_id"] == WS and snapshot["active_tasks"] == 0
    assert [e["text"] for e in snapshot["adapter"]["transcript"]][:2] == ["Plan the week", "echo: Plan the week"]

    fake_platform.requests.clear()
    proc = _boot(configs, fake_platform, tmp_path, port)
    try:
        _wait(lambda: len(fake_platform.requests_to("/registry/heartbeat")) >= 3, timeout=20, what="heartbeats")
        time.sleep(1.5)  # the readiness poll and the send would have happened by now
        assert _prompts(fake_platform, "initial") == []
        token = (configs / ".auth_token").read_text()
        transcript = httpx.get(f"{url}/transcript?limit=10", headers={"Authorization": f"Bearer {token}"}).json()
        assert transcript["lines"][0]["text"] == "Plan the week"  # the previous session, restored
    finally:
        out = _stop(proc)
    assert "restored the pre-stop snapshot" in out


# --- the initial prompt, unit by unit ----------------------------------------------------------------------

@pytest.mark.anyio
async def test_the_marker_is_written_before_the_send_so_a_failed_send_is_not_replayed(tmp_path, fake_platform,
                                                                                     make_client, config_dir):
    client = make_client()
    with_card = fake_platform.base_url + "/_card"  # no card there: readiness never succeeds
    result = await autonomy.send_initial_prompt(client, workspace_id=WS, prompt="hi", env={}, config_path=config_dir,
                                                base_url=with_card, ready_attempts=2, ready_interval=0.01)
    assert result == "not ready" and not (config_dir / autonomy.MARKER_FILE).exists()

    # ready, but the platform refuses: the marker says "attempted" and the next boot skips it
    fake_platform.registered.pop(WS, None)  # the fake proxy answers 404 workspace not found
    fake_platform.workspaces[WS] = {"id": WS}
    server = await _card_server()
    try:
        result = await autonomy.send_initial_prompt(client, workspace_id=WS, prompt="hi", env={},
                                                    config_path=config_dir, base_url=server.url, backoff=(0.01,))
    finally:
        await server.stop()
        await client.aclose()
    assert result == "failed"
    assert (config_dir / autonomy.MARKER_FILE).read_text() == "attempted"
    assert len(_prompts(fake_platform, "initial")) == 1  # a 404 is final, not retried
    assert await autonomy.send_initial_prompt(client, workspace_id=WS, prompt="hi", env={}, config_path=config_dir,
                                              base_url="http://unused") == "skipped"


@pytest.mark.anyio
async def test_transport_errors_and_5xx_are_retried_with_backoff(fake_platform, make_client):
    fake_platform.proxy_disconnects = 2  # two dropped connections, then the reply
    fake_platform.add_peer("someone", WS)
    client = make_client()
    try:
        assert await autonomy.self_send(client, WS, "go", kind="initial", timeout=5, backoff=(0.01, 0.02))
    finally:
        await client.aclose()
    assert len(_prompts(fake_platform, "initial")) == 3
    assert fake_platform.peer_hits[WS] == 1


def test_state_files_fall_back_to_the_workspace_then_the_state_dir(tmp_path):
    configs, workspace, private = (tmp_path / name for name in ("configs", "workspace", "private"))
    for directory in (configs, workspace, private):
        directory.mkdir()
    env = {"WORKSPACE_DIR": str(workspace), "MOLECULE_STATE_DIR": str(private)}
    assert autonomy.writable_state_dir(env, configs) == configs
    if os.geteuid() != 0:  # root writes everywhere
        configs.chmod(0o500)
        workspace.chmod(0o500)
        assert autonomy.writable_state_dir(env, configs) == private
        configs.chmod(0o700)
        workspace.chmod(0o700)
    (private / autonomy.MARKER_FILE).write_text("sent")
    assert autonomy.initial_prompt_done(env, configs)  # a marker anywhere counts
    assert autonomy.snapshot_path({"AGENT_SNAPSHOT_PATH": str(tmp_path / "s.json")}, configs) == tmp_path / "s.json"
    assert autonomy.writable_state_dir({"WORKSPACE_DIR": str(tmp_path / "nope")}, tmp_path / "missing") is None


# --- the idle loop --------------------------------------------------------------------------------------

@pytest.mark.anyio
async def test_the_idle_loop_fires_only_while_no_task_runs(fake_platform, make_client):
    fake_platform.add_peer("someone", WS, mode="sleep:0.3")  # each idle prompt takes 0.3 s
    client = make_client()
    state = HeartbeatState()
    state.task_started("a long task")
    loop = autonomy.IdleLoop(client, state, workspace_id=WS, prompt="anything to do?", interval=0.05)
    assert loop.first_wait == 0.05 and loop.send_timeout == 60
    loop.start()
    try:
        await _until(lambda: loop.skipped >= 3)  # polled, not slept: a loaded machine is slow
        assert _prompts(fake_platform, "idle") == []
        state.task_finished(ok=True)
        started = time.monotonic()
        await _until(lambda: fake_platform.peer_hits.get(WS, 0) >= 2)
        elapsed = time.monotonic() - started
    finally:
        await loop.stop()
        await client.aclose()
    sent = _prompts(fake_platform, "idle")
    # one at a time: each send takes 0.3 s, so in `elapsed` seconds at most elapsed / 0.3 + 1 began
    assert 2 <= len(sent) <= elapsed / 0.3 + 1
    assert sent[0].json["params"]["message"]["parts"][0]["text"] == "anything to do?"
    assert fake_platform.peer_hits[WS] in (len(sent), len(sent) - 1)  # the last may be cut short by the stop


async def _until(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_the_idle_loop_waits_at_most_a_minute_first():
    loop = autonomy.IdleLoop(None, HeartbeatState(), workspace_id=WS, prompt="x", interval=600)
    assert (loop.first_wait, loop.interval, loop.send_timeout) == (60, 600, 300)


# --- the snapshot ----------------------------------------------------------------------------------------

def test_snapshot_is_scrubbed_recursively_and_drops_sandbox_output(tmp_path):
    state = HeartbeatState()
    state.task_started("deploy with password: hunter2")
    snapshot = autonomy.build_snapshot(state, WS, {
        "session_id": "sess-1",
        "transcript": [{"role": "user", "text": f"key {SECRET_VALUE}"},
                       {"type": "sandbox_output", "text": "whatever the sandbox printed"},
                       {"role": "agent", "text": "Authorization: Bearer abc.def.ghi"}],
        "nested": {"list": ["AKIAIOSFODNN7EXAMPLE", 3, None, True]},
    })
    path = tmp_path / "snap.json"
    assert autonomy.write_snapshot(path, snapshot, {"OPENAI_API_KEY": SECRET_VALUE})
    stored = autonomy.read_snapshot(path)
    assert stored["session_id"] == "sess-1" and stored["active_tasks"] == 1
    assert "hunter2" not in stored["current_task"]
    texts = [e["text"] for e in stored["adapter"]["transcript"]]
    assert texts == ["key [REDACTED:SECRET_ENV]", "Authorization: [REDACTED:BEARER_TOKEN]"]
    assert stored["adapter"]["nested"]["list"] == ["[REDACTED:AWS_ACCESS_KEY]", 3, None, True]
    assert not autonomy.write_snapshot(tmp_path / "missing" / "snap.json", snapshot, {})  # never raises
    assert not list(tmp_path.glob("*.tmp"))


def test_an_unreadable_snapshot_is_ignored(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    assert autonomy.read_snapshot(tmp_path / "bad.json") is None
    assert autonomy.read_snapshot(tmp_path / "list.json") is None
    assert autonomy.read_snapshot(tmp_path / "absent.json") is None


def test_restore_state_puts_the_previous_session_before_this_one_and_in_the_prompt():
    adapter = EchoAdapter()
    adapter.system_prompt = "You echo."
    adapter.record("user", "new")
    adapter.restore_state({"timestamp": "2026-12-03T10:00:00Z", "current_task": "writing the report",
                           "adapter": {"session_id": "s-9", "transcript": [{"role": "user", "text": "old"}, "junk"]}})
    assert [e["text"] for e in adapter._transcript()] == ["old", "new"]
    assert adapter._snapshot_session_id == "s-9"
    assert adapter.system_prompt.startswith("You echo.\n\n## Before your last restart")
    assert "writing the report" in adapter.system_prompt and "- user: old" in adapter.system_prompt
    assert adapter.pre_stop_state()["transcript"][-1]["text"] == "new"


class _CardServer:
    def __init__(self, server, task, url):
        self.server, self.task, self.url = server, task, url

    async def stop(self):
        self.server.should_exit = True
        await self.task


async def _card_server() -> _CardServer:
    """A real HTTP server that only serves the card (what readiness polls)."""
    async def card(_request):
        return JSONResponse({"name": "x"})

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/.well-known/agent.json", card)]),
                                           host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    return _CardServer(server, task, f"http://127.0.0.1:{port}")
