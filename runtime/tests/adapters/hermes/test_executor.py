"""HermesExecutor over real HTTP: A2A server → hermes-agent's own loop (AIAgent.run_conversation,
its openai client) → fake chat-completions server, with the real built-in tools calling the fake
platform through hermes' tool registry."""

import json
import threading
import time

from ...a2a_helpers import msg03, rpc, rpc_stream
from ...fake_openai import answer_with_tool_result
from .conftest import hermes_yaml

WS_MEMORIES = "/workspaces/{ws}/memories"
TIMEOUT = 120  # hermes builds an agent per task (a few seconds on a busy 2-core machine)


def _start(llm_runtime, tmp_path, extra=""):
    return llm_runtime("hermes", hermes_yaml(f"  hermes_home: {tmp_path / 'hermes-home'}\n{extra}"))


def test_plain_message_runs_hermes_loop_and_keeps_its_state_private(llm_runtime, tmp_path):
    rt = _start(llm_runtime, tmp_path)
    rt.llm.script = [{"content": "Hello from the model."}]
    result = rpc(rt.url, "message/send", {"message": msg03("hi there")}, timeout=TIMEOUT)["result"]
    assert result["parts"][0]["text"] == "Hello from the model."
    [call] = rt.llm.requests
    assert call.body["model"] == "gpt-4o-mini"  # "openai:" prefix stripped
    assert call.body["stream"] is True
    assert call.headers["authorization"] == "Bearer sk-test-fake-key-0001"
    assert call.headers["user-agent"].startswith("OpenAI/Python")  # hermes' openai client sent it
    system, user = call.messages
    assert system["role"] == "system"
    assert "Hermes Agent" in system["content"]  # hermes' own prompt assembly…
    assert "You are a helpful test agent." in system["content"]  # …carrying the workspace prompt
    assert "commit_memory" in system["content"]
    assert user == {"role": "user", "content": "hi there"}
    # the Molecule tools, and only them (no hermes toolsets unless runtime_config.toolsets asks)
    assert set(call.tool_names) == set(rt.adapter.all_tools)
    assert {"commit_memory", "search_memory", "delegate_task", "list_peers"} <= set(call.tool_names)
    schema = next(t for t in call.body["tools"] if t["function"]["name"] == "commit_memory")
    assert schema["function"]["parameters"]["required"] == ["content"]
    # hermes' state lives in the configured private HERMES_HOME
    home = tmp_path / "hermes-home"
    assert (home / "config.yaml").read_text().count("api_max_retries: 0") == 1
    assert (home / "logs" / "agent.log").is_file()
    assert "conversation turn" in (home / "logs" / "agent.log").read_text()


def test_commit_memory_reaches_the_platform_and_the_result_goes_back(llm_runtime, tmp_path, workspace_id):
    rt = _start(llm_runtime, tmp_path)
    rt.llm.script = [
        {"tool_calls": [{"id": "call_mem_1", "name": "commit_memory",
                         "arguments": {"content": "The launch is on Friday", "scope": "team"}}]},
        answer_with_tool_result("Saved it. Tool result: {result}"),
    ]
    result = rpc(rt.url, "message/send", {"message": msg03("Remember the launch is Friday, for the team")},
                 timeout=TIMEOUT)["result"]
    text = result["parts"][0]["text"]

    [req] = rt.platform.requests_to(WS_MEMORIES.format(ws=workspace_id), "POST")
    assert req.json == {"content": "The launch is on Friday", "scope": "TEAM"}
    assert req.headers["authorization"] == "Bearer adapter-test-token"
    memory_id = rt.platform.memories[0]["id"]

    first, second = rt.llm.requests
    assistant, tool_msg = second.messages[-2:]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"][0]["id"] == "call_mem_1"
    assert assistant["tool_calls"][0]["function"]["name"] == "commit_memory"
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "call_mem_1"
    assert json.loads(tool_msg["content"]) == {"success": True, "id": memory_id, "scope": "TEAM"}
    assert text == f"Saved it. Tool result: {tool_msg['content']}"

    [trace] = result["metadata"]["tool_trace"]
    assert trace["tool"] == "commit_memory"
    assert json.loads(trace["input"]) == {"content": "The launch is on Friday", "scope": "team"}
    assert memory_id in trace["output_preview"]


def test_delegate_task_is_ours_not_hermes_subagents(llm_runtime, tmp_path, workspace_id):
    """hermes' loop handles `delegate_task` itself (sub-agents); the adapter routes it to Molecule's."""
    rt = _start(llm_runtime, tmp_path)
    rt.platform.add_peer(workspace_id, "peer-dev", name="Dev")
    rt.llm.script = [
        {"tool_calls": [{"id": "call_del", "name": "delegate_task",
                         "arguments": {"workspace_id": "peer-dev", "task": "write the tests"}}]},
        answer_with_tool_result("Dev says: {result}"),
    ]
    result = rpc(rt.url, "message/send", {"message": msg03("get Dev to write the tests")}, timeout=TIMEOUT)["result"]
    [proxied] = rt.platform.requests_to("/workspaces/peer-dev/a2a", "POST")
    assert proxied.json["params"]["message"]["parts"] == [{"kind": "text", "text": "write the tests"}]
    tool_msg = rt.llm.requests[1].messages[-1]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "call_del"
    assert json.loads(tool_msg["content"]) == {"success": True, "workspace_id": "peer-dev", "peer": "Dev",
                                               "response": "echo: write the tests"}
    assert result["parts"][0]["text"] == f"Dev says: {tool_msg['content']}"
    assert [t["tool"] for t in result["metadata"]["tool_trace"]] == ["delegate_task"]


def test_history_goes_to_the_model_in_order(llm_runtime, tmp_path):
    rt = _start(llm_runtime, tmp_path)
    history = [{"role": "user", "parts": [{"kind": "text", "text": "my name is Ada"}]},
               {"role": "agent", "parts": [{"kind": "text", "text": "Hi Ada"}]},
               {"role": "user", "parts": []}]
    rpc(rt.url, "message/send", {"message": msg03("what is my name?"), "metadata": {"history": history}},
        timeout=TIMEOUT)
    assert rt.llm.requests[0].messages[1:] == [
        {"role": "user", "content": "my name is Ada"}, {"role": "assistant", "content": "Hi Ada"},
        {"role": "user", "content": "what is my name?"}]


def test_provider_500_is_an_agent_error_counted_by_the_heartbeat(llm_runtime, tmp_path):
    rt = _start(llm_runtime, tmp_path)
    rt.llm.script = [{"status": 500, "error": "upstream exploded"}]
    text = rpc(rt.url, "message/send", {"message": msg03("hello")}, timeout=TIMEOUT)["result"]["parts"][0]["text"]
    assert text.startswith("Agent error: ") and "upstream exploded" in text
    assert len(rt.llm.requests) == 1  # runtime_config.max_retries: 0 → hermes' agent.api_max_retries
    assert rt.state.error_rate == 1.0 and rt.state.active_tasks == 0
    rt.llm.script = [{"content": "fine now"}]
    assert rpc(rt.url, "message/send", {"message": msg03("again")}, timeout=TIMEOUT)["result"]["parts"][0]["text"] == "fine now"
    assert rt.state.error_rate == 0.5


def test_stream_sends_model_deltas_as_artifact_chunks(llm_runtime, tmp_path):
    rt = _start(llm_runtime, tmp_path)
    answer = "A streamed answer that spans several deltas."
    rt.llm.script = [{"content": answer}]
    events = [e["result"] for e in rpc_stream(rt.url, "message/stream", {"message": msg03("stream please")},
                                              timeout=TIMEOUT)]
    chunks = [e for e in events if e["kind"] == "artifact-update"]
    assert len(chunks) > 3  # one per SSE delta hermes got from the model
    assert [c["append"] for c in chunks] == [False] + [True] * (len(chunks) - 1)
    assert "".join(c["artifact"]["parts"][0]["text"] for c in chunks).strip() == answer
    assert events[-1]["kind"] == "message" and events[-1]["parts"][0]["text"] == answer


def test_tasks_cancel_interrupts_a_slow_model_call(llm_runtime, tmp_path):
    rt = _start(llm_runtime, tmp_path)
    rt.llm.script = [{"content": "too late", "delay": 8}]
    holder = {}
    sender = threading.Thread(target=lambda: holder.update(
        out=rpc(rt.url, "message/send", {"message": msg03("slow please")}, timeout=TIMEOUT)))
    sender.start()
    deadline = time.monotonic() + TIMEOUT
    while not (rt.llm.requests and rt.executor._running) and time.monotonic() < deadline:
        time.sleep(0.05)
    [task_id] = list(rt.executor._running)
    started = time.monotonic()
    out = rpc(rt.url, "tasks/cancel", {"id": task_id})
    sender.join(timeout=30)
    assert out["result"]["status"]["state"] == "canceled"
    assert holder["out"]["result"]["status"]["state"] == "canceled"
    assert time.monotonic() - started < 6  # did not wait for the 8 s model answer
    deadline = time.monotonic() + 10
    while (rt.executor._running or rt.state.active_tasks) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rt.executor._running == {} and rt.state.active_tasks == 0
    assert rt.state.error_rate == 0.0  # a cancel is not an agent error
    time.sleep(1)
    assert len(rt.llm.requests) == 1  # hermes' interrupted loop made no further model call


def test_a_nous_model_goes_out_with_the_nous_key_through_hermes_nous_provider(llm_runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("NOUS_API_KEY", "nous-test-key-0002")
    monkeypatch.setenv("HERMES_MODEL", "nous:Hermes-4-70B")  # wins over model: in config.yaml
    rt = _start(llm_runtime, tmp_path)  # OPENAI_BASE_URL points every provider at the fake server
    rt.llm.script = [{"content": "Hermes here."}]
    result = rpc(rt.url, "message/send", {"message": msg03("who are you?")}, timeout=TIMEOUT)["result"]
    assert result["parts"][0]["text"] == "Hermes here."
    [call] = rt.llm.requests
    assert call.body["model"] == "Hermes-4-70B"
    assert call.headers["authorization"] == "Bearer nous-test-key-0002"
    assert "Provider: nous" in call.messages[0]["content"]


def test_running_runtime_answers_message_send_and_calls_a_platform_tool(tmp_path, fake_openai, fake_platform):
    """The whole process: config → preflight → hermes adapter → A2A server → register; message/send →
    hermes' loop → model → commit_memory on the platform → model → reply."""
    from ...conftest import free_port, write_config
    from ..conftest import process_env, runtime_process

    ws = "44444444-4444-4444-8444-444444444444"
    configs = write_config(tmp_path / "configs", hermes_yaml(f"  hermes_home: {tmp_path / 'hh'}\n"))
    (configs / "system-prompt.md").write_text("You are the Hermes worker.")
    fake_openai.script = [
        {"tool_calls": [{"id": "call_p1", "name": "commit_memory", "arguments": {"content": "process fact"}}]},
        answer_with_tool_result("Stored: {result}"),
    ]
    env = process_env(WORKSPACE_ID=ws, WORKSPACE_CONFIG_PATH=str(configs), PLATFORM_URL=fake_platform.base_url,
                      PORT=str(free_port()), HOST="127.0.0.1", OPENAI_BASE_URL=fake_openai.base_url,
                      OPENAI_API_KEY="sk-process-key", DELEGATION_RESULTS_FILE=str(tmp_path / "d.jsonl"),
                      HEARTBEAT_INTERVAL="30", HERMES_HOME=str(tmp_path / "not-this-one"))
    with runtime_process(env, fake_platform, ws) as url:
        result = rpc(url, "message/send", {"message": msg03("remember the process fact")}, timeout=TIMEOUT)["result"]
    [req] = fake_platform.requests_to(f"/workspaces/{ws}/memories", "POST")
    assert req.json == {"content": "process fact", "scope": "LOCAL"}
    memory_id = fake_platform.memories[0]["id"]
    assert result["parts"][0]["text"] == f'Stored: {{"success": true, "id": "{memory_id}", "scope": "LOCAL"}}'
    assert [c.body["model"] for c in fake_openai.requests] == ["gpt-4o-mini", "gpt-4o-mini"]
    assert "You are the Hermes worker." in fake_openai.requests[0].messages[0]["content"]
    assert fake_openai.requests[0].headers["authorization"] == "Bearer sk-process-key"
    assert (tmp_path / "hh" / "logs" / "agent.log").is_file() and not (tmp_path / "not-this-one").exists()
