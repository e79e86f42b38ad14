"""google-adk's model calls as `chat <model>` spans (telemetry.py, executor.TracedGemini): a real
ADK Runner behind the real A2A app, its model the fake Gemini server over real HTTP (through the
real google-genai client), the spans exported to the loopback OTLP collector (tests/otel_collector.py)."""

import json
import threading
import time

from ...a2a_helpers import msg03, rpc
from ...fake_gemini import answer_with_function_response
from ...otel_collector import PARENT_ID, STATUS_ERROR, TRACE_ID, TRACEPARENT, by_name, flush
from .conftest import ADK_CONFIG

NO_STREAM = ADK_CONFIG + "runtime_config: {stream: false}\n"


def send(url: str, text: str, headers: dict | None = None) -> dict:
    out = rpc(url, "message/send", {"message": msg03(text)}, headers=headers or {}, timeout=30)
    assert "result" in out, out
    return out["result"]


def _tool_then_answer(rt, answer_usage: dict, finish_reason: str = "STOP"):
    rt.gemini.script = [
        {"function_calls": [{"id": "fc-m", "name": "commit_memory", "args": {"content": "the launch is Friday"}}],
         "usage": {"promptTokenCount": 200, "toolUsePromptTokenCount": 5, "candidatesTokenCount": 12,
                   "thoughtsTokenCount": 30, "totalTokenCount": 247}},
        lambda body: {**answer_with_function_response("Saved: {result}")(body), "usage": answer_usage,
                      "finish_reason": finish_reason},
    ]


def test_each_model_call_is_a_chat_span_under_the_task_and_its_usage_rides_on_the_reply(
        tracing, collector, adk_runtime, workspace_id):
    assert tracing(runtime="google-adk")
    rt = adk_runtime()  # streamed (SSE): the usage comes on the last event of each call
    _tool_then_answer(rt, {"promptTokenCount": 260, "candidatesTokenCount": 20, "totalTokenCount": 280},
                      finish_reason="MAX_TOKENS")
    result = send(rt.url, "remember that the launch is Friday", {"traceparent": TRACEPARENT})
    assert result["parts"][0]["text"].startswith("Saved: ")
    # both calls' usage as the fake server reported it: input = prompt + tool-use prompt tokens,
    # output = candidate + thinking tokens
    assert result["metadata"]["usage"] == {"input_tokens": 465, "output_tokens": 62, "model": "gemini-2.5-flash"}
    flush()

    spans = collector.spans("/otlp/v1/traces")
    [task] = by_name(spans, "a2a.task")
    assert (task["trace_id"], task["parent_id"]) == (TRACE_ID, PARENT_ID)
    assert task["resource"]["workspace.runtime"] == "google-adk"
    first, second = by_name(spans, "chat gemini-2.5-flash")  # exported in the order they ended
    for chat in (first, second):
        assert (chat["trace_id"], chat["parent_id"], chat["kind"]) == (TRACE_ID, task["span_id"], "CLIENT")
        attrs = chat["attributes"]
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.system"] == "google_genai"
        assert attrs["gen_ai.request.model"] == "gemini-2.5-flash"
        assert attrs["gen_ai.response.model"] == "gemini-2.5-flash"  # the response's modelVersion
        assert "gen_ai.prompt" not in attrs and "gen_ai.completion" not in attrs  # no OTEL_CAPTURE_CONTENT
        assert chat["status"] != STATUS_ERROR
    assert (first["attributes"]["gen_ai.usage.input_tokens"], first["attributes"]["gen_ai.usage.output_tokens"]) == (205, 42)
    assert first["attributes"]["gen_ai.response.finish_reasons"] == ["STOP"]
    assert (second["attributes"]["gen_ai.usage.input_tokens"], second["attributes"]["gen_ai.usage.output_tokens"]) == (260, 20)
    assert second["attributes"]["gen_ai.response.finish_reasons"] == ["MAX_TOKENS"]
    assert "a2a.input_preview" not in task["attributes"]

    [tool] = by_name(spans, "execute_tool commit_memory")
    assert (tool["trace_id"], tool["parent_id"]) == (TRACE_ID, task["span_id"])
    assert len(rt.platform.requests_to(f"/workspaces/{workspace_id}/memories", "POST")) == 1


def test_prompt_and_completion_are_on_the_span_only_with_otel_capture_content(tracing, collector, adk_runtime):
    assert tracing({"OTEL_CAPTURE_CONTENT": "true"}, runtime="google-adk")
    rt = adk_runtime(NO_STREAM)  # generateContent: one whole response per call
    _tool_then_answer(rt, {"promptTokenCount": 90, "candidatesTokenCount": 8, "totalTokenCount": 98})
    result = send(rt.url, "remember this, secretly")
    assert result["metadata"]["usage"] == {"input_tokens": 295, "output_tokens": 50, "model": "gemini-2.5-flash"}
    flush()
    spans = collector.spans()
    [task] = by_name(spans, "a2a.task")
    assert task["attributes"]["a2a.input_preview"] == "remember this, secretly"
    first, second = by_name(spans, "chat gemini-2.5-flash")
    assert {first["parent_id"], second["parent_id"]} == {task["span_id"]}
    assert (second["attributes"]["gen_ai.usage.input_tokens"], second["attributes"]["gen_ai.usage.output_tokens"]) == (90, 8)
    # the prompt is what ADK sent Gemini: our system prompt as the system instruction, then the contents
    prompt = json.loads(first["attributes"]["gen_ai.prompt"])
    assert prompt[0]["role"] == "system"
    assert prompt[0]["parts"][0]["text"].startswith("You are a helpful test agent.")
    assert prompt[-1] == {"role": "user", "parts": [{"text": "remember this, secretly"}]}
    [part] = json.loads(first["attributes"]["gen_ai.completion"])  # a function call, no text
    assert part["function_call"]["name"] == "commit_memory" and part["function_call"]["id"] == "fc-m"
    assert json.loads(second["attributes"]["gen_ai.prompt"])[-1]["parts"][0]["function_response"]["id"] == "fc-m"
    assert second["attributes"]["gen_ai.completion"] == result["parts"][0]["text"]


def test_a_failed_model_call_is_an_error_span_and_the_reply_has_no_usage(tracing, collector, adk_runtime):
    assert tracing(runtime="google-adk")
    rt = adk_runtime(ADK_CONFIG + "runtime_config: {max_retries: 0}\n")
    rt.gemini.script = [{"status": 500, "error": "upstream exploded"}]
    result = send(rt.url, "hello", {"traceparent": TRACEPARENT})
    assert result["parts"][0]["text"] == "Agent error: ServerError"
    assert "usage" not in (result.get("metadata") or {})
    flush()
    spans = collector.spans()
    [task] = by_name(spans, "a2a.task")
    [chat] = by_name(spans, "chat gemini-2.5-flash")
    assert task["status"] == STATUS_ERROR
    assert (chat["parent_id"], chat["status"]) == (task["span_id"], STATUS_ERROR)
    assert "gen_ai.usage.input_tokens" not in chat["attributes"]


def test_a_cancelled_model_call_still_ends_its_span(tracing, collector, adk_runtime):
    assert tracing(runtime="google-adk")
    rt = adk_runtime()
    rt.gemini.script = [{"text": "too late", "delay": 1.5}]
    sender = threading.Thread(target=lambda: rpc(rt.url, "message/send", {"message": msg03("slow please")},
                                                 timeout=10))
    sender.start()
    deadline = time.monotonic() + 5
    while not (rt.gemini.requests and rt.executor._running) and time.monotonic() < deadline:
        time.sleep(0.02)
    [task_id] = list(rt.executor._running)
    assert rpc(rt.url, "tasks/cancel", {"id": task_id})["result"]["status"]["state"] == "canceled"
    sender.join(timeout=10)
    deadline = time.monotonic() + 5
    while rt.executor._running and time.monotonic() < deadline:
        time.sleep(0.02)
    flush()
    spans = collector.spans()
    [task] = by_name(spans, "a2a.task")
    [chat] = by_name(spans, "chat gemini-2.5-flash")  # ended (cut short), not left open
    assert (chat["parent_id"], chat["status"]) == (task["span_id"], STATUS_ERROR)
    assert "gen_ai.usage.input_tokens" not in chat["attributes"]


def test_vertex_ai_calls_name_vertexai_as_the_system(adk_runtime, monkeypatch):
    """The model object the executor builds for Vertex AI express mode (no call: Vertex is not faked)."""
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    rt = adk_runtime()
    assert rt.executor.settings.vertexai
    assert rt.executor.model()._molecule_provider == "vertexai"
