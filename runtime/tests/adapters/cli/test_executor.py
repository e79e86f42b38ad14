"""CLIExecutor through the real A2A server: the custom preset with a python script as the command,
and the codex preset running the real `codex` CLI against the fake Responses API over HTTP, its
MCP tool calls going through `python -m molecule_runtime.mcp_server` to the fake platform."""

from __future__ import annotations

import json
import os
import threading
import time

from ...a2a_helpers import msg03, rpc
from ...fake_openai import answer_with_tool_result

WS_MEMORIES = "/workspaces/{ws}/memories"


def _custom_yaml(python, script, args, extra=""):
    quoted = ", ".join(json.dumps(a) for a in [str(script), *args])
    return f"""
        name: CLI Agent
        runtime: cli
        model: openai:gpt-4.1-mini
        runtime_config:
          command: {json.dumps(str(python))}
          args: [{quoted}]
{extra}"""


def send(url: str, text: str, timeout: float = 90.0, **params) -> dict:
    """message/send with room for a real CLI (codex starts in seconds, not milliseconds)."""
    out = rpc(url, "message/send", {"message": msg03(text), **params}, timeout=timeout)
    assert "result" in out, out
    return out["result"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_running(executor, records, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not (executor._running and executor.processes and records()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert executor._running and records(), "the CLI did not start"


# ----------------------------------------------------------------------------- custom preset


def test_custom_command_gets_message_system_prompt_and_model_and_stdout_is_the_reply(llm_runtime, agent_script):
    python, script, records = agent_script
    rt = llm_runtime("cli", _custom_yaml(python, script, ["--system", "{system_prompt}", "--model", "{model}",
                                                          "{message}"]))
    result = send(rt.url, "hello custom")
    assert result["parts"][0]["text"] == "custom reply to: hello custom"
    [rec] = records()
    system = rec["argv"][1]
    assert rec["argv"][0] == "--system" and rec["argv"][2:] == ["--model", "gpt-4.1-mini", "hello custom"]
    assert system.startswith("You are a helpful test agent.")
    assert "## Inter-Agent Communication" in system and "commit_memory" in system
    assert rec["stdin"] == ""  # {message} is in the args: nothing on stdin
    assert rec["env"]["MOLECULE_MESSAGE"] == "hello custom" and rec["env"]["MOLECULE_SYSTEM_PROMPT"] == system
    assert "TRACEPARENT" not in rec["env"]  # tracing is off: no trace to join
    assert rt.llm.requests == []  # the command is the agent: no model call from the runtime


def test_custom_command_without_message_placeholder_reads_the_prompt_and_history_on_stdin(llm_runtime, agent_script):
    python, script, records = agent_script
    rt = llm_runtime("cli", _custom_yaml(python, script, []))
    history = [{"role": "user", "parts": [{"kind": "text", "text": "my name is Ada"}]},
               {"role": "agent", "parts": [{"kind": "text", "text": "Hi Ada"}]}]
    result = send(rt.url, "what is my name?", metadata={"history": history})
    [rec] = records()
    assert rec["argv"] == []
    assert rec["stdin"] == ("Conversation so far:\nUser: my name is Ada\nAssistant: Hi Ada\n\n"
                            "New message from the user:\nwhat is my name?")
    assert result["parts"][0]["text"] == "custom reply to: " + rec["stdin"]


def test_custom_command_non_zero_exit_is_an_agent_error_with_redacted_stderr(llm_runtime, agent_script):
    python, script, _records = agent_script
    rt = llm_runtime("cli", _custom_yaml(python, script, ["{message}"]))
    text = send(rt.url, "please fail")["parts"][0]["text"]
    assert text.startswith("Agent error: ") and "exited with status 3" in text
    assert "fatal: the model rejected" in text and "loading..." in text
    assert "sk-live-abcdefghijklmnop1234" not in text and "REDACTED" in text
    assert "starting up" not in text  # stdout is not the error
    assert rt.state.error_rate == 1.0


def test_custom_command_timeout_kills_it(llm_runtime, agent_script):
    python, script, records = agent_script
    rt = llm_runtime("cli", _custom_yaml(python, script, ["{message}"], "          timeout: 2\n"))
    started = time.monotonic()
    text = send(rt.url, "please hang")["parts"][0]["text"]
    assert time.monotonic() - started < 10
    assert text == f"Agent error: {python.rsplit('/', 1)[-1]} timed out after 2s (runtime_config.timeout)"
    [rec] = records()
    assert not _alive(rec["pid"])
    assert rt.executor.processes == {}


def test_tasks_cancel_kills_the_custom_command(llm_runtime, agent_script):
    python, script, records = agent_script
    rt = llm_runtime("cli", _custom_yaml(python, script, ["{message}"]))
    holder = {}
    sender = threading.Thread(target=lambda: holder.update(
        out=rpc(rt.url, "message/send", {"message": msg03("please hang")}, timeout=30)))
    sender.start()
    _wait_running(rt.executor, records)
    [task_id] = list(rt.executor._running)
    [rec] = records()
    assert _alive(rec["pid"])
    out = rpc(rt.url, "tasks/cancel", {"id": task_id})
    sender.join(timeout=20)
    assert out["result"]["status"]["state"] == "canceled"
    assert holder["out"]["result"]["status"]["state"] == "canceled"
    deadline = time.monotonic() + 10
    while (_alive(rec["pid"]) or rt.executor._running) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(rec["pid"]), "the CLI process outlived tasks/cancel"
    assert rt.executor._running == {} and rt.state.active_tasks == 0 and rt.state.error_rate == 0.0


# ----------------------------------------------------------------------------- codex preset

CODEX_YAML = """
    name: Codex Agent
    runtime: cli
    model: openai:gpt-4.1-mini
    runtime_config:
      command: codex
      timeout: 120
      max_retries: 0
"""


def _user_texts(call) -> list[str]:
    return [c.get("text", "") for item in call.input if item.get("type") == "message" and item.get("role") == "user"
            for c in item.get("content") or []]


def _developer_texts(call) -> list[str]:
    return [c.get("text", "") for item in call.input
            if item.get("type") == "message" and item.get("role") == "developer"
            for c in item.get("content") or []]


def test_codex_answers_through_the_responses_api(llm_runtime, codex_path, cli_env):
    rt = llm_runtime("cli", CODEX_YAML, prompt="You are the codex test agent.")
    rt.llm.script = [{"content": "Hello from the Responses API."}]
    result = send(rt.url, "hi codex")
    assert result["parts"][0]["text"] == "Hello from the Responses API."
    [call] = rt.llm.requests
    assert call.body["model"] == "gpt-4.1-mini" and call.body["stream"] is True
    assert call.headers["authorization"] == "Bearer sk-test-fake-key-0001"
    assert _user_texts(call)[-1] == "hi codex"
    developer = "\n".join(_developer_texts(call))
    assert "You are the codex test agent." in developer and "## Inter-Agent Communication" in developer
    # our platform tools, offered by codex under its MCP namespace
    assert {"mcp__molecule__commit_memory", "mcp__molecule__delegate_task",
            "mcp__molecule__list_peers"} <= set(call.tool_names)


def test_codex_calls_commit_memory_through_our_mcp_server(llm_runtime, codex_path, cli_env, workspace_id):
    rt = llm_runtime("cli", CODEX_YAML)
    rt.llm.script = [
        {"tool_calls": [{"id": "call_mem_1", "namespace": "mcp__molecule", "name": "commit_memory",
                         "arguments": {"content": "Codex launch is on Friday", "scope": "team"}}]},
        answer_with_tool_result("Saved it. Tool result: {result}"),
    ]
    result = send(rt.url, "Remember that the launch is on Friday, for the team")
    [req] = rt.platform.requests_to(WS_MEMORIES.format(ws=workspace_id), "POST")
    assert req.json == {"content": "Codex launch is on Friday", "scope": "TEAM"}
    assert req.headers["authorization"] == "Bearer adapter-test-token"
    memory_id = rt.platform.memories[0]["id"]
    first, second = rt.llm.requests
    [output] = [i for i in second.input if i.get("type") == "function_call_output"]
    assert output["call_id"] == "call_mem_1"
    assert memory_id in str(output["output"])
    text = result["parts"][0]["text"]
    assert text.startswith("Saved it. Tool result: ") and memory_id in text
    [trace] = result["metadata"]["tool_trace"]
    assert trace["tool"] == "commit_memory" and trace["server"] == "molecule"
    assert json.loads(trace["input"]) == {"content": "Codex launch is on Friday", "scope": "team"}
    assert memory_id in trace["output_preview"]


def test_codex_gets_the_history_in_order(llm_runtime, codex_path, cli_env):
    rt = llm_runtime("cli", CODEX_YAML)
    history = [{"role": "user", "parts": [{"kind": "text", "text": "my name is Ada"}]},
               {"role": "agent", "parts": [{"kind": "text", "text": "Hi Ada"}]}]
    send(rt.url, "what is my name?", metadata={"history": history})
    assert _user_texts(rt.llm.requests[0])[-1] == ("Conversation so far:\nUser: my name is Ada\nAssistant: Hi Ada\n\n"
                                                   "New message from the user:\nwhat is my name?")


def test_codex_provider_error_is_an_agent_error(llm_runtime, codex_path, cli_env):
    rt = llm_runtime("cli", CODEX_YAML)
    rt.llm.default = {"status": 400, "error": "model gpt-4.1-mini is not available for this key"}
    text = send(rt.url, "hello")["parts"][0]["text"]
    assert text.startswith("Agent error: ") and "is not available for this key" in text
    assert "sk-test-fake-key-0001" not in text
    assert rt.state.error_rate == 1.0


def test_tasks_cancel_kills_codex(llm_runtime, codex_path, cli_env):
    rt = llm_runtime("cli", CODEX_YAML)
    rt.llm.script = [{"content": "too late", "delay": 30}]
    holder = {}
    sender = threading.Thread(target=lambda: holder.update(
        out=rpc(rt.url, "message/send", {"message": msg03("slow please")}, timeout=60)))
    sender.start()
    deadline = time.monotonic() + 60
    while not (rt.llm.requests and rt.executor.processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rt.llm.requests, "codex did not call the model"
    [pid] = list(rt.executor.processes)
    [task_id] = list(rt.executor._running)
    out = rpc(rt.url, "tasks/cancel", {"id": task_id})
    sender.join(timeout=30)
    assert out["result"]["status"]["state"] == "canceled"
    assert holder["out"]["result"]["status"]["state"] == "canceled"
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "codex outlived tasks/cancel"
    assert rt.state.error_rate == 0.0
