"""ClaudeCodeExecutor through the real A2A server and the real Claude Code CLI (bundled with
claude-agent-sdk), which calls the fake Anthropic Messages API over HTTP."""

import json
import threading
import time
import uuid

from ...a2a_helpers import msg03, rpc, rpc_stream
from ...fake_anthropic import answer_with_tool_result, tool_results
from .conftest import CLAUDE_KEY

WS_MEMORIES = "/workspaces/{ws}/memories"


def send03(url: str, text: str, **msg) -> dict:
    """0.3 message/send with a timeout for a CLI start (a few seconds each) → the result."""
    out = rpc(url, "message/send", {"message": msg03(text, **msg)}, timeout=90)
    assert "result" in out, out
    return out["result"]


def test_a2a_task_answered_by_claude_with_prompt_tools_and_key(claude_runtime):
    rt = claude_runtime()
    rt.claude.script = [{"content": "Hello from Claude"}]
    result = send03(rt.url, "hi there")
    assert result["parts"][0]["text"] == "Hello from Claude"
    [call] = rt.claude.conversation()
    assert call.headers["x-api-key"] == CLAUDE_KEY
    assert call.body["model"].startswith("claude-") and "sonnet" in call.body["model"]  # the `sonnet` alias
    assert call.body["stream"] is True
    system = call.system_text
    assert "You are a helpful test agent." in system
    assert "## Inter-Agent Communication" in system and "mcp__a2a__delegate_task" in system
    assert {"mcp__a2a__commit_memory", "mcp__a2a__search_memory", "mcp__a2a__delegate_task",
            "mcp__a2a__list_peers"} <= set(call.tool_names)
    schema = next(t for t in call.body["tools"] if t["name"] == "mcp__a2a__commit_memory")
    assert schema["input_schema"]["required"] == ["content"]
    assert "hi there" in json.dumps(call.messages[0])
    # the cwd is the config dir (WORKSPACE_DIR is empty)
    assert str(rt.config_dir.resolve()) in json.dumps(call.body)


def test_streamed_text_arrives_as_artifact_chunks(claude_runtime):
    rt = claude_runtime()
    rt.claude.script = [{"content": "A streamed answer in several pieces"}]
    events = rpc_stream(rt.url, "message/stream", {"message": msg03("stream it")}, timeout=60)
    chunks = [e["result"] for e in events if e.get("result", {}).get("kind") == "artifact-update"]
    assert len(chunks) >= 3
    assert "".join(c["artifact"]["parts"][0]["text"] for c in chunks) == "A streamed answer in several pieces"
    assert chunks[0]["append"] is False and all(c["append"] for c in chunks[1:])
    assert len({c["artifact"]["artifactId"] for c in chunks}) == 1
    assert events[-1]["result"]["parts"][0]["text"] == "A streamed answer in several pieces"



def test_stream_false_sends_each_answer_as_one_chunk(claude_runtime):
    rt = claude_runtime("runtime: claude-code\nruntime_config: {stream: false}\n")
    rt.claude.script = [{"content": "One piece only, please"}]
    events = rpc_stream(rt.url, "message/stream", {"message": msg03("no streaming")}, timeout=60)
    chunks = [e["result"] for e in events if e.get("result", {}).get("kind") == "artifact-update"]
    assert [c["artifact"]["parts"][0]["text"] for c in chunks] == ["One piece only, please"]
    assert events[-1]["result"]["parts"][0]["text"] == "One piece only, please"

def test_commit_memory_tool_reaches_the_platform_and_its_result_goes_back(claude_runtime, workspace_id):
    rt = claude_runtime()
    rt.claude.script = [
        {"tool_calls": [{"id": "toolu_mem_1", "name": "mcp__a2a__commit_memory",
                         "arguments": {"content": "The launch is on Friday", "scope": "team"}}]},
        answer_with_tool_result("Saved it. Tool result: {result}"),
    ]
    result = send03(rt.url, "Remember that the launch is on Friday, for the team")
    text = result["parts"][0]["text"]

    [req] = rt.platform.requests_to(WS_MEMORIES.format(ws=workspace_id), "POST")
    assert req.json == {"content": "The launch is on Friday", "scope": "TEAM"}
    assert req.headers["authorization"] == "Bearer adapter-test-token"
    memory_id = rt.platform.memories[0]["id"]

    first, second = rt.claude.conversation()
    [tool_result] = tool_results(second.body)
    assert tool_result["tool_use_id"] == "toolu_mem_1"
    result_text = "".join(b["text"] for b in tool_result["content"])
    assert json.loads(result_text) == {"success": True, "id": memory_id, "scope": "TEAM"}
    assistant = second.messages[-2]
    assert assistant["role"] == "assistant" and assistant["content"][0]["type"] == "tool_use"
    assert text == f"Saved it. Tool result: {result_text}"

    [trace] = result["metadata"]["tool_trace"]
    assert trace["tool"] == "commit_memory"
    assert json.loads(trace["input"]) == {"content": "The launch is on Friday", "scope": "team"}
    assert memory_id in trace["output_preview"]


def test_second_message_of_a_context_resumes_the_claude_session(claude_runtime):
    rt = claude_runtime()
    rt.claude.script = [{"content": "First answer"}, {"content": "Second answer"}, {"content": "Other context"}]
    context = uuid.uuid4().hex
    first = send03(rt.url, "first question", contextId=context)
    assert first["parts"][0]["text"] == "First answer"
    session = rt.executor.sessions[context]
    second = rpc(rt.url, "message/send", {"message": msg03("second question", contextId=context)}, timeout=60)
    assert second["result"]["parts"][0]["text"] == "Second answer"
    assert rt.executor.sessions[context] == session  # resumed, not a new session
    one, two = rt.claude.conversation()
    assert one.headers["x-claude-code-session-id"] == two.headers["x-claude-code-session-id"] == session
    dumped = json.dumps(two.messages)
    assert dumped.index("first question") < dumped.index("First answer") < dumped.index("second question")
    # another context: a new session that knows nothing of the first
    send03(rt.url, "unrelated", contextId=uuid.uuid4().hex)
    third = rt.claude.conversation()[2]
    assert third.headers["x-claude-code-session-id"] != session
    assert "first question" not in json.dumps(third.messages)


def test_history_goes_before_the_text_of_a_new_session_in_order(claude_runtime):
    rt = claude_runtime()
    rt.claude.script = [{"content": "ok"}]
    history = [{"role": "user", "parts": [{"kind": "text", "text": "my name is Ada"}]},
               {"role": "agent", "parts": [{"kind": "text", "text": "hello Ada"}]},
               {"role": "user", "parts": [{"kind": "text", "text": "I like tea"}]}]
    out = rpc(rt.url, "message/send", {"message": msg03("what do I like?"), "metadata": {"history": history}},
              timeout=60)
    assert out["result"]["parts"][0]["text"] == "ok"
    [call] = rt.claude.conversation()
    text = json.dumps(call.messages[0])
    order = [text.index(s) for s in ("User: my name is Ada", "Assistant: hello Ada", "User: I like tea",
                                     "what do I like?")]
    assert order == sorted(order)


def test_overloaded_529_is_retried_with_backoff_then_answered(claude_runtime):
    rt = claude_runtime()
    rt.claude.script = [{"status": 529}, {"status": 429}, {"content": "Answered after the retries"}]
    started = time.monotonic()
    result = send03(rt.url, "busy?")
    assert result["parts"][0]["text"] == "Answered after the retries"
    assert len(rt.claude.conversation()) == 3
    assert time.monotonic() - started >= 0.05 + 0.1  # slept retry_base_delay, then twice that
    assert rt.state.error_rate == 0.0


def test_rate_limit_retries_exhausted_become_an_agent_error(claude_runtime):
    rt = claude_runtime("runtime: claude-code\nruntime_config: {retry_base_delay: 0.01, rate_limit_retries: 1}\n")
    rt.claude.script = [{"status": 429}, {"status": 429}, {"content": "never"}]
    text = send03(rt.url, "busy?")["parts"][0]["text"]
    assert text.startswith("Agent error: ") and "429" in text
    assert len(rt.claude.conversation()) == 2
    assert rt.state.error_rate > 0


def test_provider_error_becomes_an_agent_error_without_retry(claude_runtime):
    rt = claude_runtime()
    rt.claude.script = [{"status": 401, "error": "fake auth failure"}, {"content": "no"}]
    text = send03(rt.url, "hello")["parts"][0]["text"]
    assert text.startswith("Agent error: ") and "401 fake auth failure" in text
    assert rt.state.error_rate > 0
    assert len(rt.claude.conversation()) == 1


def test_cli_process_error_resets_the_session(claude_runtime):
    rt = claude_runtime()
    rt.claude.script = [{"content": "fresh start"}]
    context = uuid.uuid4().hex
    rt.executor.sessions[context] = str(uuid.uuid4())  # a session the CLI does not have
    text = send03(rt.url, "hello", contextId=context)["parts"][0]["text"]
    assert text.startswith("Agent error: ")
    assert context not in rt.executor.sessions
    text = send03(rt.url, "hello again", contextId=context)["parts"][0]["text"]
    assert text == "fresh start"
    assert rt.executor.sessions[context]


def test_tasks_cancel_interrupts_the_running_turn(claude_runtime):
    rt = claude_runtime()
    rt.claude.script = [{"content": "too late", "delay": 20}]
    holder = {}
    sender = threading.Thread(target=lambda: holder.update(
        out=rpc(rt.url, "message/send", {"message": msg03("slow please")}, timeout=60)))
    sender.start()
    deadline = time.monotonic() + 30
    while not (rt.claude.conversation() and rt.executor._running) and time.monotonic() < deadline:
        time.sleep(0.05)
    [task_id] = list(rt.executor._running)
    started = time.monotonic()
    out = rpc(rt.url, "tasks/cancel", {"id": task_id})
    sender.join(timeout=30)
    assert out["result"]["status"]["state"] == "canceled"
    assert holder["out"]["result"]["status"]["state"] == "canceled"
    deadline = time.monotonic() + 15
    while (rt.executor._running or rt.state.active_tasks) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rt.executor._running == {} and rt.state.active_tasks == 0
    assert time.monotonic() - started < 15  # well before the model's 20 s answer
    assert rt.state.error_rate == 0.0


def test_transcript_lines_read_the_claude_session_file(claude_runtime):
    import asyncio

    rt = claude_runtime()
    rt.claude.script = [{"content": "noted"}]
    context = uuid.uuid4().hex
    send03(rt.url, "please note this", contextId=context)
    session = rt.executor.sessions[context]
    out = asyncio.run(rt.adapter.transcript_lines(0, 5000))
    assert out["supported"] is True and out["runtime"] == "claude-code"
    assert out["source"].endswith(f"{session}.jsonl")
    assert out["source"].startswith(str(rt.claude.home / ".claude" / "projects"))
    dumped = json.dumps(out["lines"])
    assert "please note this" in dumped and "noted" in dumped
    assert out["cursor"] == len(out["lines"]) and out["more"] is False
    page = asyncio.run(rt.adapter.transcript_lines(1, 1))
    assert page["lines"] == out["lines"][1:2] and page["cursor"] == 2 and page["more"] is True

