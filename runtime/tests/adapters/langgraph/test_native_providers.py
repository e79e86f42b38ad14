"""langgraph with a native provider API (the provider map, spec §3.3): an `anthropic:` model goes through
ChatAnthropic to the fake Anthropic Messages API (`tests/fake_anthropic.py`), not chat-completions."""

import json

import pytest

from ...a2a_helpers import msg03, rpc_stream, send03
from ...fake_anthropic import FakeAnthropicServer, answer_with_tool_result, tool_results

pytest.importorskip("langchain_anthropic")

ANTHROPIC_KEY = "sk-ant-test-fake-0001"


@pytest.fixture(scope="module")
def _anthropic_server():
    server = FakeAnthropicServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_anthropic(_anthropic_server, monkeypatch):
    state = _anthropic_server.state
    state.reset()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", state.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    yield state
    state.reset()


def _config(runtime="langgraph", stream=True):
    return (f"name: Claude graph\nruntime: {runtime}\nmodel: anthropic:claude-sonnet-4-5\n"
            f"runtime_config: {{max_retries: 0, stream: {str(stream).lower()}}}\n")


@pytest.mark.parametrize("stream", [True, False])
def test_anthropic_model_speaks_the_messages_api(llm_runtime, fake_anthropic, stream):
    rt = llm_runtime("langgraph", _config(stream=stream), prompt="You are Claude in a graph.")
    fake_anthropic.script = [{"content": "Hello from Claude."}]
    result = send03(rt.url, "hi claude")
    assert result["parts"][0]["text"] == "Hello from Claude."
    assert rt.llm.requests == []  # nothing went to the OpenAI-compatible endpoint (OPENAI_BASE_URL is set)
    [call] = fake_anthropic.messages_calls()
    assert call.body["model"] == "claude-sonnet-4-5" and bool(call.body.get("stream")) is stream
    # the anthropic SDK sends the key as x-api-key or (2.x) as a bearer token
    assert ANTHROPIC_KEY in (call.headers.get("x-api-key", ""), call.headers.get("authorization", "")[7:])
    assert "anthropic-version" in call.headers
    assert call.system_text.startswith("You are Claude in a graph.")
    assert call.messages == [{"role": "user", "content": "hi claude"}]
    assert {"commit_memory", "delegate_task"} <= set(call.tool_names)
    commit = next(t for t in call.body["tools"] if t["name"] == "commit_memory")
    assert commit["input_schema"]["required"] == ["content"]


def test_anthropic_tool_use_reaches_the_platform_and_the_tool_result_goes_back(llm_runtime, fake_anthropic,
                                                                               workspace_id):
    rt = llm_runtime("langgraph", _config())
    fake_anthropic.script = [
        {"tool_calls": [{"id": "toolu_lg_1", "name": "commit_memory",
                         "arguments": {"content": "Claude remembers", "scope": "LOCAL"}}]},
        answer_with_tool_result("Stored: {result}"),
    ]
    result = send03(rt.url, "remember this")
    [req] = rt.platform.requests_to(f"/workspaces/{workspace_id}/memories", "POST")
    assert req.json == {"content": "Claude remembers", "scope": "LOCAL"}
    memory_id = rt.platform.memories[0]["id"]
    first, second = fake_anthropic.messages_calls()
    assistant = second.messages[-2]
    assert assistant["role"] == "assistant"
    assert any(b.get("type") == "tool_use" and b["id"] == "toolu_lg_1" for b in assistant["content"])
    [tool_result] = tool_results(second.body)
    assert tool_result["tool_use_id"] == "toolu_lg_1"
    text = tool_result["content"] if isinstance(tool_result["content"], str) else \
        "".join(b["text"] for b in tool_result["content"])
    assert json.loads(text) == {"success": True, "id": memory_id, "scope": "LOCAL"}
    assert result["parts"][0]["text"] == f"Stored: {text}"
    [trace] = result["metadata"]["tool_trace"]
    assert trace["tool"] == "commit_memory" and memory_id in trace["output_preview"]


def test_anthropic_stream_sends_deltas_as_artifact_chunks(llm_runtime, fake_anthropic):
    rt = llm_runtime("langgraph", _config())
    answer = "Claude streams this answer in several deltas."
    fake_anthropic.script = [{"content": answer}]
    events = [e["result"] for e in rpc_stream(rt.url, "message/stream", {"message": msg03("stream")}, timeout=30)]
    chunks = [e for e in events if e["kind"] == "artifact-update"]
    assert len(chunks) > 3 and "".join(c["artifact"]["parts"][0]["text"] for c in chunks) == answer
    assert events[-1]["parts"][0]["text"] == answer


def test_anthropic_overloaded_is_an_agent_error(llm_runtime, fake_anthropic):
    rt = llm_runtime("langgraph", _config())
    fake_anthropic.script = [{"status": 529}]
    text = send03(rt.url, "hello")["parts"][0]["text"]
    assert text.startswith("Agent error: ") and "overloaded_error" in text and ANTHROPIC_KEY not in text
    assert rt.state.error_rate == 1.0


def test_deepagents_uses_the_same_map(llm_runtime, fake_anthropic, tmp_path, monkeypatch):
    pytest.importorskip("deepagents")
    monkeypatch.setenv("WORKSPACE_DIR", str(tmp_path / "no-workspace"))
    rt = llm_runtime("deepagents", _config("deepagents"))
    fake_anthropic.script = [{"content": "Deep Claude."}]
    assert send03(rt.url, "hi")["parts"][0]["text"] == "Deep Claude."
    [call] = fake_anthropic.messages_calls()
    assert call.body["model"] == "claude-sonnet-4-5" and {"write_file", "commit_memory"} <= set(call.tool_names)
    assert rt.executor.root_dir == rt.config_dir.resolve()  # no workspace: the config dir is the root


# ----------------------------------------------------------------------------- google_genai → Gemini API

GEMINI_KEY = "AIzaSy-test-fake-langgraph-0001"


@pytest.fixture(scope="module")
def _gemini_server():
    from ...fake_gemini import FakeGeminiServer

    server = FakeGeminiServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_gemini(_gemini_server, monkeypatch):
    state = _gemini_server.state
    state.reset()
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT",
                 "GOOGLE_GEMINI_BASE_URL", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", state.base_url)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    yield state
    state.reset()


def test_google_genai_model_speaks_the_gemini_api_with_tools(llm_runtime, fake_gemini, workspace_id):
    pytest.importorskip("langchain_google_genai")
    rt = llm_runtime("langgraph", "name: Gemini graph\nruntime: langgraph\nmodel: google_genai:gemini-2.5-flash\n"
                                  "runtime_config: {max_retries: 0}\n", prompt="You are Gemini in a graph.")
    fake_gemini.script = [
        {"function_calls": [{"name": "commit_memory", "args": {"content": "Gemini remembers"}, "id": "fc-1"}]},
        {"text": "Gemini stored it."},
    ]
    result = send03(rt.url, "remember for gemini")
    assert result["parts"][0]["text"] == "Gemini stored it."
    assert rt.llm.requests == []  # not the OpenAI-compatible endpoint
    [req] = rt.platform.requests_to(f"/workspaces/{workspace_id}/memories", "POST")
    assert req.json == {"content": "Gemini remembers", "scope": "LOCAL"}
    first, second = fake_gemini.requests
    assert first.model.endswith("gemini-2.5-flash") and first.system_text.startswith("You are Gemini in a graph.")
    assert first.headers.get("x-goog-api-key") == GEMINI_KEY
    assert first.stream and second.stream  # runtime_config.stream (default true) → streamGenerateContent
    assert "commit_memory" in first.tool_names
    memory_id = rt.platform.memories[0]["id"]
    assert memory_id in json.dumps(second.contents)  # the function response went back to the model
