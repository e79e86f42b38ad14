"""OpenClawExecutor over real processes: A2A server → `openclaw agent` CLI → the real openclaw gateway
→ the fake chat-completions server over HTTP (one gateway for the module); the turn's span read back
by the loopback OTLP collector (otel_collector.py, the `collector` and `tracing` fixtures of tests/conftest.py)."""

import json
import os
import re
import threading
import time
import uuid

from molecule_runtime import telemetry

from ...a2a_helpers import msg03, rpc
from .conftest import LLM_KEY, PLATFORM_TOKEN, PROMPT, WORKSPACE_ID

TURN = 150.0  # seconds one A2A call may take: the CLI gets 120 s + 10


def ask(rt, text: str, context_id: str | None = None, **params) -> dict:
    message = msg03(text, **({"contextId": context_id} if context_id else {}))
    out = rpc(rt.url, "message/send", {"message": message, **params}, timeout=TURN)
    assert "result" in out, out
    return out["result"]


def user_texts(call) -> list[str]:
    """The user messages openclaw sent, without its own internal-context blocks."""
    texts = []
    for m in call.messages:
        if m["role"] != "user":
            continue
        content = m["content"]
        text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
        if not text.startswith("<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>"):
            texts.append(text)
    return texts


def said(text: str) -> str:
    """What the user said in one of openclaw's user messages: `[<time>] <text>\n\nRuntime: …`."""
    return re.sub(r"^\[[^\]]*\] ", "", text.split("\n\nRuntime: ")[0])


def test_a2a_task_is_answered_by_the_model_through_the_gateway(oc):
    oc.llm.script = [{"content": "Hello from the fake model via OpenClaw."}]
    context = f"ctx-{uuid.uuid4().hex[:8]}"
    result = ask(oc, "hi there", context)
    assert result["parts"][0]["text"] == "Hello from the fake model via OpenClaw."
    assert result["contextId"] == context
    [call] = oc.llm.requests
    assert call.body["model"] == "gpt-4o-mini"  # "openai:" stripped, the custom provider's model id
    assert call.headers["authorization"] == f"Bearer {LLM_KEY}"  # the key written after onboarding
    system = call.messages[0]
    assert system["role"] == "system"
    system_text = system["content"] if isinstance(system["content"], str) else str(system["content"])
    assert PROMPT in system_text  # /configs/system-prompt.md → the workspace's AGENTS.md
    assert said(user_texts(call)[-1]) == "hi there"
    assert f"session=agent:main:explicit:{context}" in user_texts(call)[-1]  # --session-id = the context id
    assert oc.state.active_tasks == 0 and oc.pushes[-2:] == [(1, "hi there"), (0, "")]


def test_the_session_id_is_the_context_id_and_the_session_continues(oc):
    context = f"ctx-{uuid.uuid4().hex[:8]}"
    oc.llm.script = [{"content": "Noted, your number is 42."}, {"content": "It was 42."}]
    assert ask(oc, "my number is 42", context)["parts"][0]["text"] == "Noted, your number is 42."
    assert ask(oc, "what was my number?", context)["parts"][0]["text"] == "It was 42."
    first, second = oc.llm.requests
    assert [said(t) for t in user_texts(first)] == ["my number is 42"]
    # openclaw replays its own session for that id: the first turn is in the second request
    assert [said(t) for t in user_texts(second)] == ["my number is 42", "what was my number?"]
    assistant = [m for m in second.messages if m["role"] == "assistant"]
    assert any("Noted, your number is 42." in str(m.get("content")) for m in assistant)


def test_history_is_passed_in_order_on_a_new_context(oc):
    oc.llm.script = [{"content": "You are Ada."}]
    history = [{"role": "user", "parts": [{"kind": "text", "text": "my name is Ada"}]},
               {"role": "agent", "parts": [{"kind": "text", "text": "Hi Ada"}]},
               {"role": "user", "parts": []}]
    result = ask(oc, "what is my name?", f"ctx-{uuid.uuid4().hex[:8]}", metadata={"history": history})
    assert result["parts"][0]["text"] == "You are Ada."
    [call] = oc.llm.requests
    assert said(user_texts(call)[-1]) == (
        "Conversation so far:\nUser: my name is Ada\nAssistant: Hi Ada\n\nCurrent message:\nwhat is my name?")


def test_provider_error_is_an_agent_error(oc):
    oc.llm.default = {"status": 400, "error": "upstream exploded"}
    result = ask(oc, "hello", f"ctx-{uuid.uuid4().hex[:8]}")
    text = result["parts"][0]["text"]
    assert text.startswith("Agent error: ")
    # openclaw words the failure itself (it does not pass the provider's body through)
    assert text == "Agent error: LLM request failed: provider rejected the request schema or tool payload."
    assert oc.llm.requests and oc.llm.requests[0].body["model"] == "gpt-4o-mini"  # the model was called
    assert oc.state.active_tasks == 0 and oc.state.error_rate > 0


def test_tasks_cancel_kills_the_cli(oc):
    oc.llm.script = [{"content": "too late", "delay": 60}]
    holder = {}
    sender = threading.Thread(target=lambda: holder.update(
        out=rpc(oc.url, "message/send", {"message": msg03("slow please")}, timeout=TURN)))
    sender.start()
    deadline = time.monotonic() + 90
    while not (oc.llm.requests and oc.executor._running) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert oc.llm.requests, "the model was never called"
    [task_id] = list(oc.executor._running)
    [proc] = list(oc.executor.processes.values())
    pid = proc.pid
    out = rpc(oc.url, "tasks/cancel", {"id": task_id})
    sender.join(timeout=30)
    assert out["result"]["status"]["state"] == "canceled"
    assert holder["out"]["result"]["status"]["state"] == "canceled"
    deadline = time.monotonic() + 10
    while oc.executor.processes and time.monotonic() < deadline:
        time.sleep(0.05)
    assert oc.executor.processes == {}
    assert proc.returncode is not None  # the CLI was killed and reaped
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive
    assert oc.state.active_tasks == 0


def test_a_platform_tool_called_through_the_mcp_server_reaches_the_platform(oc):
    """openclaw reaches the built-in tools through `python -m molecule_runtime.mcp_server` (its
    config's mcp.servers.molecule); MCP tools are deferred behind openclaw's `tool_call`."""
    from ...fake_openai import answer_with_tool_result

    oc.llm.script = [
        {"tool_calls": [{"id": "callm1", "name": "tool_call",
                         "arguments": {"id": "molecule__commit_memory",
                                       "args": {"content": "The launch is on Friday", "scope": "team"}}}]},
        answer_with_tool_result("Saved. Tool said: {result}"),
    ]
    result = ask(oc, "Remember that the launch is on Friday, for the team", f"ctx-{uuid.uuid4().hex[:8]}")
    [req] = oc.platform.requests_to(f"/workspaces/{WORKSPACE_ID}/memories", "POST")
    assert req.json == {"content": "The launch is on Friday", "scope": "TEAM"}
    assert req.headers["authorization"] == f"Bearer {PLATFORM_TOKEN}"  # the MCP server read /configs/.auth_token
    memory_id = oc.platform.memories[0]["id"]
    first, second = oc.llm.requests
    assert "tool_call" in first.tool_names
    assistant, tool_msg = [m for m in second.messages if m["role"] in ("assistant", "tool")][-2:]
    assert assistant["tool_calls"][0]["id"] == "callm1"
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "callm1"
    fed_back = tool_msg["content"] if isinstance(tool_msg["content"], str) else str(tool_msg["content"])
    # openclaw wraps a tool result as untrusted content: a JSON document naming the MCP tool,
    # whose MCP text content is our tool's JSON
    wrapped = json.loads(fed_back.split("\n---\n", 1)[1].split("\n<<<END_EXTERNAL_UNTRUSTED_CONTENT", 1)[0])
    assert wrapped["tool"]["name"] == "molecule__commit_memory" and wrapped["tool"]["source"] == "mcp"
    assert json.loads(wrapped["result"]["content"][0]["text"]) == {"success": True, "id": memory_id, "scope": "TEAM"}
    text = result["parts"][0]["text"]
    assert text.startswith("Saved. Tool said: ") and memory_id in text
    # tool_trace: the tools openclaw's run summary names (meta.toolSummary.tools)
    assert [t["tool"] for t in result["metadata"]["tool_trace"]] == ["molecule__commit_memory", "tool_call"]


# ----------------------------------------------------------------------------- spans


def _spans(collector) -> list[dict]:
    assert telemetry.force_flush(5000)
    return collector.spans("/otlp/v1/traces")


def test_a_turn_is_one_chat_span_with_the_usage_of_all_its_model_calls(oc, tracing, collector):
    assert tracing()
    oc.llm.script = [
        {"tool_calls": [{"id": "callp1", "name": "tool_call", "arguments": {"id": "molecule__list_peers", "args": {}}}],
         "usage": (111, 11)},
        {"content": "You have no peers.", "usage": (222, 22)},
    ]
    result = ask(oc, "who are my peers?", f"ctx-{uuid.uuid4().hex[:8]}")
    assert result["parts"][0]["text"] == "You have no peers."
    assert len(oc.llm.requests) == 2
    # the reply carries the turn's usage (both model calls): what the platform meters
    assert result["metadata"]["usage"] == {"input_tokens": 333, "output_tokens": 33, "model": "gpt-4o-mini"}
    spans = _spans(collector)
    [task] = [s for s in spans if s["name"] == "a2a.task"]
    [chat] = [s for s in spans if s["name"].startswith("chat ")]  # the CLI hides the single calls
    assert (chat["name"], chat["trace_id"], chat["parent_id"], chat["kind"]) == (
        "chat gpt-4o-mini", task["trace_id"], task["span_id"], "CLIENT")
    assert chat["attributes"] == {
        "gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 333, "gen_ai.usage.output_tokens": 33,
        "gen_ai.response.finish_reasons": ["stop"], "gen_ai.response.model": "gpt-4o-mini",
        "molecule.usage.on_reply": True}  # the reply carries the usage; the platform meters it once
    assert chat["status"] == 0


def test_the_turns_prompt_and_reply_are_on_its_span_only_with_otel_capture_content(oc, tracing, collector):
    assert tracing({"OTEL_CAPTURE_CONTENT": "true"})
    oc.llm.script = [{"content": "The secret answer.", "usage": (40, 4)}]
    result = ask(oc, "tell me the secret", f"ctx-{uuid.uuid4().hex[:8]}")
    assert result["metadata"]["usage"] == {"input_tokens": 40, "output_tokens": 4, "model": "gpt-4o-mini"}
    [chat] = [s for s in _spans(collector) if s["name"] == "chat gpt-4o-mini"]
    assert json.loads(chat["attributes"]["gen_ai.prompt"]) == [{"role": "user", "content": "tell me the secret"}]
    assert chat["attributes"]["gen_ai.completion"] == "The secret answer."


def test_a_failed_turn_is_an_error_span_without_usage(oc, tracing, collector):
    assert tracing()
    oc.llm.default = {"status": 400, "error": "upstream exploded"}
    result = ask(oc, "hello", f"ctx-{uuid.uuid4().hex[:8]}")
    assert result["parts"][0]["text"].startswith("Agent error: ")
    assert "usage" not in result.get("metadata", {})
    spans = _spans(collector)
    [task] = [s for s in spans if s["name"] == "a2a.task"]
    [chat] = [s for s in spans if s["name"].startswith("chat ")]
    assert chat["parent_id"] == task["span_id"]
    assert (chat["status"], task["status"]) == (2, 2)  # STATUS_CODE_ERROR
    assert not any(key.startswith("gen_ai.usage.") for key in chat["attributes"])
