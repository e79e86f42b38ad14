"""Task checkpoints (molecule_runtime/checkpoints.py): every tool step of a task is written to the
platform's ``/workspaces/:id/checkpoints``, deleted when the task ends, and a task a stopped
process left unfinished is offered to the next task after the restart — in process against the
fake platform and the fake OpenAI server, and with a real runtime process killed mid-task."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import uvicorn

import molecule_runtime
from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.openai import Adapter as OpenAIAdapter
from molecule_runtime.card import build_agent_card
from molecule_runtime.checkpoints import Interrupted
from molecule_runtime.config import load_config
from molecule_runtime.server import CardHolder, build_app
from molecule_runtime.tools import build_tools

from a2a_helpers import send03
from conftest import free_port, write_config
from fake_openai import answer_with_tool_result

pytest.importorskip("openai")

TOKEN = "checkpoints-test-token"
REMEMBER = {"tool_calls": [{"name": "commit_memory", "arguments": {"content": "the build is green"}}]}


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch, fake_openai, fake_platform, workspace_id, config_dir):
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "MODEL_PROVIDER", "PARENT_ID", "ADAPTER_MODULE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("PLUGINS_DIR", str(tmp_path / "no-plugins"))
    write_config(config_dir, "name: Worker\nruntime: openai\nmodel: openai:gpt-4o\n")
    (config_dir / "system-prompt.md").write_text("You are the worker.")
    (config_dir / ".auth_token").write_text(TOKEN)
    fake_platform.tokens[workspace_id] = {TOKEN}


def _run(make_client, config_dir, texts: list[str], *, drive=None) -> list[dict]:
    """Boot an openai adapter with the fake platform as its platform, serve it, send ``texts`` in
    order (one event loop for the client and the server); or ``await drive(url, executor)``."""
    async def scenario():
        client = make_client()
        adapter = OpenAIAdapter()
        cfg = AdapterConfig(model="openai:gpt-4o", config_path=str(config_dir), workspace_id=client.workspace_id,
                            prompt_files=["system-prompt.md"], builtin_tools=dict(build_tools(client)), platform=client)
        await adapter.setup(cfg)
        executor = await adapter.create_executor(cfg)
        port = free_port()
        cards = CardHolder(build_agent_card(load_config(config_dir, env={}), f"http://127.0.0.1:{port}", []))
        server = uvicorn.Server(uvicorn.Config(build_app(executor, cards, adapter=adapter), host="127.0.0.1",
                                               port=port, lifespan="off", log_level="warning"))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            if drive is not None:
                return await drive(f"http://127.0.0.1:{port}", executor)
            return [await asyncio.to_thread(send03, f"http://127.0.0.1:{port}", text) for text in texts]
        finally:
            server.should_exit = True
            await serving
            await client.aclose()
    return asyncio.run(scenario())


def _writes(fake_platform, workspace_id):
    return [r for r in fake_platform.requests_to(f"/workspaces/{workspace_id}/checkpoints", "POST")]


def _user_text(call) -> str:
    return [m for m in call.messages if m["role"] == "user"][-1]["content"]


def test_each_tool_step_is_checkpointed_and_the_workflow_deleted_at_the_end(
        fake_openai, fake_platform, make_client, config_dir, workspace_id):
    fake_openai.script = [REMEMBER, REMEMBER, answer_with_tool_result("Stored: {result}")]
    [result] = _run(make_client, config_dir, ["remember the build status twice"])
    assert result["parts"][0]["text"].startswith("Stored: ")
    writes = _writes(fake_platform, workspace_id)
    assert [(w.json["step_name"], w.json["step_index"]) for w in writes] == [("task", 0), ("tool-1", 1), ("tool-2", 2)]
    workflow = writes[0].json["workflow_id"]
    assert workflow.startswith("task-") and {w.json["workflow_id"] for w in writes} == {workflow}
    assert writes[0].json["payload"] == {"text": "remember the build status twice"}
    step = writes[1].json["payload"]
    assert step["tool"] == "commit_memory" and json.loads(step["input"]) == {"content": "the build is green"}
    assert '"success": true' in step["output"]
    assert all(w.headers["authorization"] == f"Bearer {TOKEN}" for w in writes)
    [delete] = fake_platform.requests_to(f"/workspaces/{workspace_id}/checkpoints/{workflow}", "DELETE")
    assert fake_platform.checkpoints[workspace_id] == {}


def test_a_task_without_tools_writes_no_checkpoint(fake_openai, fake_platform, make_client, config_dir, workspace_id):
    fake_openai.script = [{"content": "hi"}]
    _run(make_client, config_dir, ["hello"])
    assert _writes(fake_platform, workspace_id) == []
    assert not [r for r in fake_platform.requests if r.method == "DELETE"]


def _interrupt(fake_platform, workspace_id, *, text="Audit every dependency and report", steps=2):
    wf = "task-old-1"
    rows = fake_platform.checkpoints[workspace_id]
    rows[(wf, "task")] = {"workflow_id": wf, "step_name": "task", "step_index": 0, "payload": {"text": text}}
    for n in range(1, steps + 1):
        rows[(wf, f"tool-{n}")] = {"workflow_id": wf, "step_name": f"tool-{n}", "step_index": n,
                                   "payload": {"tool": "search_memory", "input": f'{{"query": "dep {n}"}}',
                                               "output": f"dep {n} is fine"}}
    return wf


def test_the_next_task_after_a_boot_gets_the_interrupted_task_once(
        fake_openai, fake_platform, make_client, config_dir, workspace_id):
    old = _interrupt(fake_platform, workspace_id)
    fake_openai.script = [{"content": "continuing"}, {"content": "fresh"}]
    _run(make_client, config_dir, ["please continue", "something else"])
    first, second = (_user_text(call) for call in fake_openai.requests)
    assert first.startswith("[Resumed after a restart]")
    assert "Audit every dependency and report" in first
    assert "1. search_memory({\"query\": \"dep 1\"}) → dep 1 is fine" in first
    assert "2. search_memory({\"query\": \"dep 2\"}) → dep 2 is fine" in first
    assert first.endswith("\n\nplease continue")
    assert second == "something else"  # offered once
    # the note became the resumed task's own step 0 before the old workflow went; both are gone now
    writes = _writes(fake_platform, workspace_id)
    assert writes[0].json["step_name"] == "task" and writes[0].json["payload"]["text"].startswith("[Resumed")
    assert fake_platform.requests_to(f"/workspaces/{workspace_id}/checkpoints/{old}", "DELETE")
    assert fake_platform.checkpoints[workspace_id] == {}


def test_a_latest_checkpoint_of_another_workflow_is_not_a_task_to_resume(
        fake_openai, fake_platform, make_client, config_dir, workspace_id):
    fake_platform.checkpoints[workspace_id][("nightly-etl", "load")] = {
        "workflow_id": "nightly-etl", "step_name": "load", "step_index": 3, "payload": {"rows": 10}}
    fake_openai.script = [{"content": "ok"}]
    _run(make_client, config_dir, ["hello"])
    assert _user_text(fake_openai.requests[0]) == "hello"
    assert ("nightly-etl", "load") in fake_platform.checkpoints[workspace_id]  # not ours to delete


def test_a_failing_checkpoint_store_never_fails_the_task(
        fake_openai, fake_platform, make_client, config_dir, workspace_id, caplog):
    fake_platform.checkpoints_status = 500
    fake_openai.script = [REMEMBER, answer_with_tool_result("Stored: {result}")]
    [result] = _run(make_client, config_dir, ["remember it"])
    assert result["parts"][0]["text"].startswith("Stored: ")
    assert "cannot read the latest checkpoint" in caplog.text and "not written" in caplog.text


def test_a_task_cancelled_by_tasks_cancel_leaves_no_checkpoint(
        fake_openai, fake_platform, make_client, config_dir, workspace_id):
    from a2a_helpers import msg03, rpc

    fake_openai.script = [REMEMBER, {"content": "too late", "delay": 5}]

    async def drive(url, executor):
        sending = asyncio.create_task(asyncio.to_thread(rpc, url, "message/send", {"message": msg03("long job")}))
        while not (len(fake_openai.requests) == 2 and executor._running):
            await asyncio.sleep(0.02)
        assert {k[1] for k in fake_platform.checkpoints[workspace_id]} == {"task", "tool-1"}
        [task_id] = list(executor._running)
        cancelled = await asyncio.to_thread(rpc, url, "tasks/cancel", {"id": task_id})
        await sending
        deadline = time.monotonic() + 5  # the checkpoints go once the cancelled run has unwound
        while fake_platform.checkpoints[workspace_id] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return cancelled

    cancelled = _run(make_client, config_dir, [], drive=drive)
    assert cancelled["result"]["status"]["state"] == "canceled"
    assert fake_platform.checkpoints[workspace_id] == {}  # cancelled on purpose: nothing to resume


def test_the_note_lists_the_last_steps_of_a_long_task():
    steps = [{"tool": "t", "input": str(n), "output": "o" * 900} for n in range(1, 31)]
    note = Interrupted(workflow_id="task-x", text="long job", steps=steps).note()
    assert "Steps already done (30 tool call(s), the last 20 shown):" in note
    assert "\n11. t(11) → " in note and "\n10. t(10)" not in note
    assert len(note) < 20 * 900


# ----------------------------------------------------------------------------- a real restart

def _start(env):
    return subprocess.Popen([sys.executable, "-m", "molecule_runtime.main"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait(predicate, what, timeout=30.0, proc=None):
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"runtime exited {proc.returncode}: {proc.stdout.read()}")
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_runtime_killed_mid_task_resumes_it_after_the_restart(tmp_path, fake_openai, fake_platform):
    import threading

    from .adapters.conftest import process_env

    ws = "55555555-5555-4555-8555-555555555555"
    configs = write_config(tmp_path / "proc-configs", "name: Worker\nruntime: openai\nmodel: openai:gpt-4o\n")
    (configs / "system-prompt.md").write_text("You are the worker.")
    (configs / ".auth_token").write_text(TOKEN)
    fake_platform.tokens[ws] = {TOKEN}
    # step 1 runs, then the model "thinks" for a minute: the process is killed meanwhile
    fake_openai.script = [REMEMBER, {"content": "too late", "delay": 60}, {"content": "resumed and done"}]
    port = free_port()
    env = process_env(WORKSPACE_ID=ws, WORKSPACE_CONFIG_PATH=str(configs), PLATFORM_URL=fake_platform.base_url,
                      PORT=str(port), HOST="127.0.0.1", OPENAI_BASE_URL=fake_openai.base_url,
                      OPENAI_API_KEY="sk-process-key", DELEGATION_RESULTS_FILE=str(tmp_path / "d.jsonl"),
                      HEARTBEAT_INTERVAL="30", PLUGINS_DIR=str(tmp_path / "no-plugins"),
                      PYTHONPATH=str(Path(molecule_runtime.__file__).parents[1]))  # this checkout's runtime
    first = _start(env)
    try:
        _wait(lambda: ws in fake_platform.registered, "runtime did not register", proc=first)
        url = fake_platform.registered[ws]["url"]
        threading.Thread(target=lambda: _swallow(send03, url, "audit the build"), daemon=True).start()
        _wait(lambda: any(k[1] == "tool-1" for k in fake_platform.checkpoints[ws]), "no tool step checkpointed",
              proc=first)
        _wait(lambda: len(fake_openai.requests) == 2, "the second model call never started", proc=first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
    assert {k[1] for k in fake_platform.checkpoints[ws]} == {"task", "tool-1"}

    fake_platform.registered.pop(ws)
    second = _start(env)
    try:
        _wait(lambda: ws in fake_platform.registered, "restarted runtime did not register", proc=second)
        result = send03(fake_platform.registered[ws]["url"], "please continue")
    finally:
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=15)
    assert second.returncode == 0, out
    assert result["parts"][0]["text"] == "resumed and done"
    resumed = _user_text(fake_openai.requests[-1])
    assert resumed.startswith("[Resumed after a restart]") and "audit the build" in resumed
    assert "1. commit_memory(" in resumed and '"success": true' in resumed
    assert resumed.endswith("please continue")
    assert fake_platform.checkpoints[ws] == {}


def _swallow(fn, *args):
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 — the call dies with the killed process
        pass
