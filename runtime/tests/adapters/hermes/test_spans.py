"""hermes' model requests as `chat <model>` spans: a task through hermes' own loop (its openai
client, streamed) against the fake chat-completions server, the spans read back by the loopback
OTLP collector (otel_collector.py, the `collector` and `tracing` fixtures of tests/conftest.py)."""

import json

from ...a2a_helpers import msg03, rpc
from ...fake_openai import answer_with_tool_result
from .conftest import hermes_yaml

TIMEOUT = 120


def _start(llm_runtime, tmp_path):
    return llm_runtime("hermes", hermes_yaml(f"  hermes_home: {tmp_path / 'hermes-home'}\n"))


def _send(url: str, text: str) -> dict:
    out = rpc(url, "message/send", {"message": msg03(text)}, timeout=TIMEOUT)
    assert "result" in out, out
    return out["result"]


def _spans(collector, tracing_module) -> list[dict]:
    assert tracing_module.force_flush(5000)
    return collector.spans("/otlp/v1/traces")


def test_each_model_request_is_a_chat_span_with_the_usage_the_model_reported(tracing, collector, llm_runtime,
                                                                             tmp_path):
    from molecule_runtime import telemetry

    assert tracing()
    rt = _start(llm_runtime, tmp_path)
    rt.llm.script = [
        {"tool_calls": [{"id": "call_m", "name": "commit_memory", "arguments": {"content": "spans fact"}}],
         "usage": (123, 7)},
        lambda body: {**answer_with_tool_result("Saved: {result}")(body), "usage": (150, 20)},
    ]
    result = _send(rt.url, "remember the spans fact")
    assert result["parts"][0]["text"].startswith('Saved: {"success": true')
    assert [c.body["stream"] for c in rt.llm.requests] == [True, True]  # hermes streams; the usage chunk ends it
    # the reply carries both requests' usage, summed: what the platform meters
    assert result["metadata"]["usage"] == {"input_tokens": 273, "output_tokens": 27, "model": "gpt-4o-mini"}

    spans = _spans(collector, telemetry)
    [task] = [s for s in spans if s["name"] == "a2a.task"]
    chats = [s for s in spans if s["name"].startswith("chat ")]
    assert [c["name"] for c in chats] == ["chat gpt-4o-mini", "chat gpt-4o-mini"]
    for chat in chats:
        assert (chat["trace_id"], chat["parent_id"], chat["kind"]) == (task["trace_id"], task["span_id"], "CLIENT")
        assert chat["status"] == 0
    first, second = sorted(chats, key=lambda c: c["attributes"]["gen_ai.usage.input_tokens"])
    assert first["attributes"] == {
        "gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 123, "gen_ai.usage.output_tokens": 7,
        "gen_ai.response.finish_reasons": ["tool_calls"], "gen_ai.response.model": "gpt-4o-mini",
        "molecule.usage.on_reply": True}  # the reply carries the usage; the platform meters it once
    assert (second["attributes"]["gen_ai.usage.input_tokens"], second["attributes"]["gen_ai.usage.output_tokens"],
            second["attributes"]["gen_ai.response.finish_reasons"]) == (150, 20, ["stop"])
    [tool] = [s for s in spans if s["name"] == "execute_tool commit_memory"]
    assert (tool["trace_id"], tool["parent_id"]) == (task["trace_id"], task["span_id"])


def test_prompt_and_completion_are_on_the_span_only_with_otel_capture_content(tracing, collector, llm_runtime,
                                                                              tmp_path):
    from molecule_runtime import telemetry

    assert tracing({"OTEL_CAPTURE_CONTENT": "true"})
    rt = _start(llm_runtime, tmp_path)
    rt.llm.script = [{"content": "The secret answer.", "usage": (40, 4)}]
    result = _send(rt.url, "tell me the secret")
    assert result["metadata"]["usage"] == {"input_tokens": 40, "output_tokens": 4, "model": "gpt-4o-mini"}
    [chat] = [s for s in _spans(collector, telemetry) if s["name"] == "chat gpt-4o-mini"]
    prompt = json.loads(chat["attributes"]["gen_ai.prompt"])
    assert prompt[0]["role"] == "system" and "You are a helpful test agent." in prompt[0]["content"]
    assert prompt[-1] == {"role": "user", "content": "tell me the secret"}
    assert chat["attributes"]["gen_ai.completion"] == "The secret answer."


def test_a_failed_model_request_is_an_error_span_under_a_failed_task(tracing, collector, llm_runtime, tmp_path):
    from molecule_runtime import telemetry

    assert tracing()
    rt = _start(llm_runtime, tmp_path)
    rt.llm.script = [{"status": 500, "error": "upstream exploded"}]
    result = _send(rt.url, "hello")
    assert result["parts"][0]["text"].startswith("Agent error: ")
    assert "usage" not in result.get("metadata", {})
    spans = _spans(collector, telemetry)
    [task] = [s for s in spans if s["name"] == "a2a.task"]
    [chat] = [s for s in spans if s["name"].startswith("chat ")]  # max_retries: 0 → one request
    assert chat["parent_id"] == task["span_id"]
    assert (chat["status"], task["status"]) == (2, 2)  # STATUS_CODE_ERROR
    assert "gen_ai.usage.input_tokens" not in chat["attributes"]
