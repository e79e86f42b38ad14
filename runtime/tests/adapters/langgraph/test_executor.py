"""LangGraphExecutor over real HTTP: A2A server → LangGraph ReAct agent → real ChatOpenAI → fake
chat-completions server, with the real built-in tools calling the fake platform."""

import json

import pytest

from ...a2a_helpers import msg03, rpc_stream, send03
from ...fake_openai import answer_with_tool_result

pytest.importorskip("langgraph")
pytest.importorskip("langchain_openai")


def test_plain_message_gets_the_model_answer(llm_runtime):
    rt = llm_runtime("langgraph", "name: LG\nruntime: langgraph\nmodel: openai:gpt-4.1-mini\n")
    rt.llm.script = [{"content": "Hello from the graph."}]
    result = send03(rt.url, "hi there")
    assert result["parts"][0]["text"] == "Hello from the graph."
    [call] = rt.llm.requests
    assert call.body["model"] == "gpt-4.1-mini"
    assert call.body["stream"] is True  # astream_events → ChatOpenAI streams
    assert call.headers["authorization"] == "Bearer sk-test-fake-key-0001"
    system, user = call.messages
    assert system["role"] == "system" and system["content"].startswith("You are a helpful test agent.")
    assert user == {"role": "user", "content": "hi there"}
    assert {"commit_memory", "search_memory", "delegate_task", "list_peers"} <= set(call.tool_names)
    schema = next(t for t in call.body["tools"] if t["function"]["name"] == "commit_memory")
    assert schema["function"]["parameters"]["required"] == ["content"]


@pytest.mark.parametrize("stream", [True, False])
def test_tool_call_reaches_the_platform_and_the_result_goes_back(llm_runtime, workspace_id, stream):
    rt = llm_runtime("langgraph", f"""
        runtime: langgraph
        model: gpt-4.1-mini
        runtime_config: {{stream: {str(stream).lower()}}}
    """)
    rt.llm.script = [
        {"tool_calls": [{"id": "call_lg_1", "name": "commit_memory",
                         "arguments": {"content": "Standup moved to 10:00", "scope": "LOCAL"}}]},
        answer_with_tool_result("Noted. Tool result: {result}"),
    ]
    result = send03(rt.url, "Remember that standup moved to 10:00")
    text = result["parts"][0]["text"]

    [req] = rt.platform.requests_to(f"/workspaces/{workspace_id}/memories", "POST")
    assert req.json == {"content": "Standup moved to 10:00", "scope": "LOCAL"}
    assert req.headers["authorization"] == "Bearer adapter-test-token"
    memory_id = rt.platform.memories[0]["id"]

    first, second = rt.llm.requests
    assert bool(first.body.get("stream")) is stream and bool(second.body.get("stream")) is stream
    assistant, tool_msg = second.messages[-2:]
    assert assistant["role"] == "assistant" and assistant["tool_calls"][0]["id"] == "call_lg_1"
    assert assistant["tool_calls"][0]["function"]["name"] == "commit_memory"
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "call_lg_1"
    assert json.loads(tool_msg["content"]) == {"success": True, "id": memory_id, "scope": "LOCAL"}
    assert text == f"Noted. Tool result: {tool_msg['content']}"

    [trace] = result["metadata"]["tool_trace"]
    assert trace["tool"] == "commit_memory" and memory_id in trace["output_preview"]
    assert json.loads(trace["input"]) == {"content": "Standup moved to 10:00", "scope": "LOCAL"}


def test_history_goes_to_the_model_in_order(llm_runtime):
    rt = llm_runtime("langgraph")
    history = [{"role": "user", "parts": [{"kind": "text", "text": "my name is Ada"}]},
               {"role": "agent", "parts": [{"kind": "text", "text": "Hi Ada"}]}]
    send03(rt.url, "what is my name?", metadata={"history": history})
    assert rt.llm.requests[0].messages[1:] == [
        {"role": "user", "content": "my name is Ada"}, {"role": "assistant", "content": "Hi Ada"},
        {"role": "user", "content": "what is my name?"}]


def test_provider_500_is_an_agent_error_counted_by_the_heartbeat(llm_runtime):
    rt = llm_runtime("langgraph", """
        runtime: langgraph
        model: gpt-4.1-mini
        runtime_config: {max_retries: 0}
    """)
    rt.llm.script = [{"status": 500, "error": "upstream exploded"}]
    text = send03(rt.url, "hello")["parts"][0]["text"]
    assert text.startswith("Agent error: ") and "upstream exploded" in text
    assert rt.state.error_rate == 1.0 and "upstream exploded" in rt.state.payload("ws")["sample_error"]
    assert rt.state.active_tasks == 0
    assert rt.pushes == [(1, "hello"), (0, "")]


def test_recursion_limit_from_max_tool_rounds(llm_runtime, monkeypatch):
    rt = llm_runtime("langgraph", """
        runtime: langgraph
        model: gpt-4.1-mini
        runtime_config: {max_tool_rounds: 1}
    """)
    rt.llm.default = {"tool_calls": [{"name": "search_memory", "arguments": {"query": "x"}}]}
    text = send03(rt.url, "loop forever")["parts"][0]["text"]
    assert text.startswith("Agent error: ") and "ecursion limit of 3" in text
    assert len(rt.llm.requests) == 2
    monkeypatch.setenv("LANGGRAPH_RECURSION_LIMIT", "5")  # re-read per task
    rt.llm.requests.clear()
    assert "ecursion limit of 5" in send03(rt.url, "again")["parts"][0]["text"]
    assert len(rt.llm.requests) == 3


def test_stream_sends_model_deltas_as_artifact_chunks(llm_runtime):
    rt = llm_runtime("langgraph")
    answer = "A streamed answer that spans several deltas."
    rt.llm.script = [{"content": answer}]
    events = [e["result"] for e in rpc_stream(rt.url, "message/stream", {"message": msg03("stream please")})]
    chunks = [e for e in events if e["kind"] == "artifact-update"]
    assert len(chunks) > 3
    assert [c["append"] for c in chunks] == [False] + [True] * (len(chunks) - 1)
    assert "".join(c["artifact"]["parts"][0]["text"] for c in chunks) == answer
    assert events[-2]["status"]["state"] == "completed"
    assert events[-1]["kind"] == "message" and events[-1]["parts"][0]["text"] == answer


def test_running_runtime_answers_message_send_and_calls_a_platform_tool(tmp_path, fake_openai, fake_platform):
    """The whole process with the default runtime: no `runtime:` in config.yaml means langgraph."""
    from ...conftest import free_port, write_config
    from ..conftest import process_env, runtime_process

    ws = "44444444-4444-4444-8444-444444444444"
    configs = write_config(tmp_path / "configs", "name: Graph Worker\nmodel: openai:gpt-4.1-mini\n")
    (configs / "system-prompt.md").write_text("You are the graph worker.")
    fake_openai.script = [
        {"tool_calls": [{"id": "call_g1", "name": "commit_memory", "arguments": {"content": "graph fact"}}]},
        answer_with_tool_result("Stored: {result}"),
    ]
    env = process_env(WORKSPACE_ID=ws, WORKSPACE_CONFIG_PATH=str(configs), PLATFORM_URL=fake_platform.base_url,
                      PORT=str(free_port()), HOST="127.0.0.1", OPENAI_BASE_URL=fake_openai.base_url,
                      OPENAI_API_KEY="sk-process-key", DELEGATION_RESULTS_FILE=str(tmp_path / "d.jsonl"),
                      HEARTBEAT_INTERVAL="30")
    with runtime_process(env, fake_platform, ws) as url:
        result = send03(url, "remember the graph fact")
    [req] = fake_platform.requests_to(f"/workspaces/{ws}/memories", "POST")
    assert req.json == {"content": "graph fact", "scope": "LOCAL"}
    memory_id = fake_platform.memories[0]["id"]
    assert result["parts"][0]["text"] == f'Stored: {{"success": true, "id": "{memory_id}", "scope": "LOCAL"}}'
    assert [c.body["model"] for c in fake_openai.requests] == ["gpt-4.1-mini", "gpt-4.1-mini"]
    assert fake_openai.requests[0].messages[0]["content"].startswith("You are the graph worker.")


def test_tasks_cancel_stops_a_slow_model_call(llm_runtime):
    import threading
    import time

    from ...a2a_helpers import rpc

    rt = llm_runtime("langgraph")
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
