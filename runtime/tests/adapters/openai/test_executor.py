"""OpenAIExecutor over real HTTP: A2A server → real `openai` SDK → fake chat-completions server,
with the real built-in tools calling the fake platform."""

import json

import pytest

from ...a2a_helpers import msg03, rpc_stream, send03
from ...fake_openai import answer_with_tool_result

pytest.importorskip("openai")

WS_MEMORIES = "/workspaces/{ws}/memories"


def test_plain_message_gets_the_model_answer(llm_runtime):
    rt = llm_runtime("openai")
    rt.llm.script = [{"content": "Hello from the model."}]
    result = send03(rt.url, "hi there")
    assert result["parts"][0]["text"] == "Hello from the model."
    assert "metadata" not in result or "tool_trace" not in (result.get("metadata") or {})
    [call] = rt.llm.requests
    assert call.body["model"] == "gpt-4o-mini"  # "openai:" prefix stripped
    assert call.body["stream"] is True
    assert call.headers["authorization"] == "Bearer sk-test-fake-key-0001"
    system, user = call.messages
    assert system["role"] == "system" and system["content"].startswith("You are a helpful test agent.")
    assert "commit_memory" in system["content"]
    assert user == {"role": "user", "content": "hi there"}
    assert {"commit_memory", "search_memory", "delegate_task", "list_peers"} <= set(call.tool_names)
    schema = next(t for t in call.body["tools"] if t["function"]["name"] == "commit_memory")
    assert schema["type"] == "function"
    assert schema["function"]["parameters"]["required"] == ["content"]
    assert schema["function"]["parameters"]["properties"]["scope"] == {"type": "string"}


def _tool_call_flow(rt, workspace_id):
    rt.llm.script = [
        {"tool_calls": [{"id": "call_mem_1", "name": "commit_memory",
                         "arguments": {"content": "The launch is on Friday", "scope": "team"}}]},
        answer_with_tool_result("Saved it. Tool result: {result}"),
    ]
    result = send03(rt.url, "Remember that the launch is on Friday, for the team")
    text = result["parts"][0]["text"]

    # the tool's request reached the platform, authenticated as the workspace
    [req] = rt.platform.requests_to(WS_MEMORIES.format(ws=workspace_id), "POST")
    assert req.json == {"content": "The launch is on Friday", "scope": "TEAM"}
    assert req.headers["authorization"] == "Bearer adapter-test-token"
    memory_id = rt.platform.memories[0]["id"]

    # the model got the tool result back, tied to its call id, and answered with it
    first, second = rt.llm.requests
    assert second.body["model"] == "gpt-4o-mini"
    assistant, tool_msg = second.messages[-2:]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"][0]["id"] == "call_mem_1"
    assert assistant["tool_calls"][0]["function"]["name"] == "commit_memory"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {
        "content": "The launch is on Friday", "scope": "team"}
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "call_mem_1"
    assert json.loads(tool_msg["content"]) == {"success": True, "id": memory_id, "scope": "TEAM"}
    assert text == f"Saved it. Tool result: {tool_msg['content']}"
    assert memory_id in text

    [trace] = result["metadata"]["tool_trace"]
    assert trace["tool"] == "commit_memory"
    assert json.loads(trace["input"]) == {"content": "The launch is on Friday", "scope": "team"}
    assert memory_id in trace["output_preview"]
    return first, second


def test_tool_call_reaches_the_platform_and_the_result_goes_back_streaming(llm_runtime, workspace_id):
    rt = llm_runtime("openai")
    first, second = _tool_call_flow(rt, workspace_id)
    assert first.body["stream"] is True and second.body["stream"] is True


def test_tool_call_without_streaming(llm_runtime, workspace_id):
    rt = llm_runtime("openai", """
        runtime: openai
        model: gpt-4o-mini
        runtime_config: {stream: false}
    """)
    first, second = _tool_call_flow(rt, workspace_id)
    assert "stream" not in first.body and "stream" not in second.body


def test_history_goes_to_the_model_in_order(llm_runtime):
    rt = llm_runtime("openai")
    history = [{"role": "user", "parts": [{"kind": "text", "text": "my name is Ada"}]},
               {"role": "agent", "parts": [{"kind": "text", "text": "Hi Ada"}]},
               {"role": "user", "parts": []}]
    send03(rt.url, "what is my name?", metadata={"history": history})
    assert rt.llm.requests[0].messages[1:] == [
        {"role": "user", "content": "my name is Ada"}, {"role": "assistant", "content": "Hi Ada"},
        {"role": "user", "content": "what is my name?"}]


def test_model_mistakes_are_fed_back_not_fatal(llm_runtime):
    rt = llm_runtime("openai")
    rt.llm.script = [
        {"tool_calls": [{"id": "c1", "name": "no_such_tool", "arguments": {}},
                        {"id": "c2", "name": "commit_memory", "arguments": "{not json"}]},
        {"content": "recovered"},
    ]
    result = send03(rt.url, "try tools")
    assert result["parts"][0]["text"] == "recovered"
    tool_msgs = [m for m in rt.llm.requests[1].messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == ["c1", "c2"]
    assert "unknown tool 'no_such_tool'" in json.loads(tool_msgs[0]["content"])["error"]
    assert "not valid JSON" in json.loads(tool_msgs[1]["content"])["error"]
    assert [t["tool"] for t in result["metadata"]["tool_trace"]] == ["no_such_tool", "commit_memory"]


def test_provider_500_is_an_agent_error_counted_by_the_heartbeat(llm_runtime):
    rt = llm_runtime("openai", """
        runtime: openai
        model: openai:gpt-4o-mini
        runtime_config: {max_retries: 0}
    """)
    rt.llm.script = [{"status": 500, "error": "upstream exploded"}]
    text = send03(rt.url, "hello")["parts"][0]["text"]
    assert text.startswith("Agent error: ") and "upstream exploded" in text
    assert rt.state.error_rate == 1.0 and "upstream exploded" in rt.state.payload("ws")["sample_error"]
    assert rt.state.active_tasks == 0 and rt.state.current_task == ""
    assert rt.pushes == [(1, "hello"), (0, "")]  # pushed when the task started and when it ended
    rt.llm.script = [{"content": "fine now"}]
    assert send03(rt.url, "again")["parts"][0]["text"] == "fine now"
    assert rt.state.error_rate == 0.5


def test_tool_rounds_are_capped(llm_runtime):
    rt = llm_runtime("openai", """
        runtime: openai
        model: gpt-4o-mini
        runtime_config: {max_tool_rounds: 2}
    """)
    rt.llm.default = {"tool_calls": [{"name": "search_memory", "arguments": {"query": "x"}}]}
    text = send03(rt.url, "loop forever")["parts"][0]["text"]
    assert text == "Agent error: no final answer after 2 tool rounds (runtime_config.max_tool_rounds)"
    assert len(rt.llm.requests) == 3
    assert rt.state.error_rate == 1.0


def test_stream_sends_model_deltas_as_artifact_chunks(llm_runtime):
    rt = llm_runtime("openai")
    answer = "A streamed answer that spans several deltas."
    rt.llm.script = [{"content": answer}]
    events = [e["result"] for e in rpc_stream(rt.url, "message/stream", {"message": msg03("stream please")})]
    assert events[0]["kind"] == "task"
    assert events[1]["kind"] == "status-update" and events[1]["status"]["state"] == "working"
    chunks = [e for e in events if e["kind"] == "artifact-update"]
    assert len(chunks) > 3  # one per SSE delta from the model
    assert [c["append"] for c in chunks] == [False] + [True] * (len(chunks) - 1)
    assert len({c["artifact"]["artifactId"] for c in chunks}) == 1
    assert "".join(c["artifact"]["parts"][0]["text"] for c in chunks) == answer
    final_status, final_message = events[-2], events[-1]
    assert final_status["status"]["state"] == "completed"
    assert final_message["kind"] == "message" and final_message["parts"][0]["text"] == answer


def test_empty_text_gives_the_exact_error_without_calling_the_model(llm_runtime):
    from ...a2a_helpers import rpc

    rt = llm_runtime("openai")
    out = rpc(rt.url, "message/send",
              {"message": {"role": "user", "messageId": "m-empty", "parts": [{"kind": "text", "text": " "}]}})
    assert out["result"]["parts"][0]["text"] == "Error: message contained no text content."
    assert rt.llm.requests == []


def test_running_runtime_answers_message_send_and_calls_a_platform_tool(tmp_path, fake_openai, fake_platform):
    """The whole process: config → preflight → adapter → A2A server → register; message/send → model → tool."""
    from ...conftest import free_port, write_config
    from ..conftest import process_env, runtime_process

    ws = "33333333-3333-4333-8333-333333333333"
    configs = write_config(tmp_path / "configs", "name: GPT Worker\nruntime: openai\nmodel: openai:gpt-4o\n")
    (configs / "system-prompt.md").write_text("You are the GPT worker.")
    fake_openai.script = [
        {"tool_calls": [{"id": "call_p1", "name": "commit_memory", "arguments": {"content": "process fact"}}]},
        answer_with_tool_result("Stored: {result}"),
    ]
    env = process_env(WORKSPACE_ID=ws, WORKSPACE_CONFIG_PATH=str(configs), PLATFORM_URL=fake_platform.base_url,
                      PORT=str(free_port()), HOST="127.0.0.1", OPENAI_BASE_URL=fake_openai.base_url,
                      OPENAI_API_KEY="sk-process-key", DELEGATION_RESULTS_FILE=str(tmp_path / "d.jsonl"),
                      HEARTBEAT_INTERVAL="30")
    with runtime_process(env, fake_platform, ws) as url:
        result = send03(url, "remember the process fact")
    token = (configs / ".auth_token").read_text()
    [req] = fake_platform.requests_to(f"/workspaces/{ws}/memories", "POST")
    assert req.json == {"content": "process fact", "scope": "LOCAL"}
    assert req.headers["authorization"] == f"Bearer {token}"
    memory_id = fake_platform.memories[0]["id"]
    assert result["parts"][0]["text"] == f'Stored: {{"success": true, "id": "{memory_id}", "scope": "LOCAL"}}'
    assert [c.body["model"] for c in fake_openai.requests] == ["gpt-4o", "gpt-4o"]
    assert fake_openai.requests[0].messages[0]["content"].startswith("You are the GPT worker.")
    assert fake_openai.requests[0].headers["authorization"] == "Bearer sk-process-key"


def test_tasks_cancel_stops_a_slow_model_call(llm_runtime):
    import threading
    import time

    from ...a2a_helpers import rpc

    rt = llm_runtime("openai")
    rt.llm.script = [{"content": "too late", "delay": 0.9}]
    holder = {}
    sender = threading.Thread(target=lambda: holder.update(
        out=rpc(rt.url, "message/send", {"message": msg03("slow please")}, timeout=10)))
    sender.start()
    deadline = time.monotonic() + 5
    while not (rt.llm.requests and rt.executor._running) and time.monotonic() < deadline:
        time.sleep(0.02)
    [task_id] = list(rt.executor._running)
    out = rpc(rt.url, "tasks/cancel", {"id": task_id})
    sender.join(timeout=10)
    assert out["result"]["status"]["state"] == "canceled"
    assert holder["out"]["result"]["status"]["state"] == "canceled"
    # the cancelled call unwinds after both answers went out
    deadline = time.monotonic() + 5
    while (rt.executor._running or rt.state.active_tasks) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rt.executor._running == {}
    assert rt.state.active_tasks == 0 and rt.state.error_rate == 0.0  # a cancel is not an agent error
