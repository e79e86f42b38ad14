"""The fake OpenAI server's Responses API (`POST /v1/responses`, what codex speaks), read by the
real `openai` SDK: non-streaming and streaming, text and function_call output items."""

from __future__ import annotations

import json

import openai
import pytest


def _client(fake_openai):
    return openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-responses-test", max_retries=0)


def test_non_streaming_text_and_function_call(fake_openai):
    fake_openai.script = [
        {"content": "Plain answer."},
        {"tool_calls": [{"id": "call_9", "name": "commit_memory", "arguments": {"content": "x"}}]},
    ]
    client = _client(fake_openai)
    first = client.responses.create(model="gpt-4.1-mini", input="hello")
    assert first.status == "completed" and first.output_text == "Plain answer."
    assert first.usage.total_tokens == 15
    second = client.responses.create(
        model="gpt-4.1-mini", input=[{"role": "user", "content": "remember x"}],
        tools=[{"type": "function", "name": "commit_memory", "parameters": {"type": "object", "properties": {}}}])
    [call] = second.output
    assert (call.type, call.call_id, call.name) == ("function_call", "call_9", "commit_memory")
    assert json.loads(call.arguments) == {"content": "x"}
    assert fake_openai.requests[1].tool_names == ["commit_memory"]
    assert fake_openai.requests[0].input == [{"type": "message", "role": "user",
                                              "content": [{"type": "input_text", "text": "hello"}]}]


def test_streaming_events_and_errors(fake_openai):
    answer = "A streamed Responses answer."
    fake_openai.script = [
        {"content": answer},
        {"tool_calls": [{"id": "call_s", "namespace": "mcp__molecule", "name": "list_peers", "arguments": {}}]},
        {"status": 429, "error": "slow down"},
    ]
    client = _client(fake_openai)
    events = list(client.responses.create(model="m", input="hi", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == answer
    assert events[-1].response.output_text == answer
    events = list(client.responses.create(model="m", input="hi", stream=True))
    [done] = [e for e in events if e.type == "response.output_item.done"]
    assert done.item.type == "function_call" and done.item.name == "list_peers" and done.item.call_id == "call_s"
    assert done.item.model_dump().get("namespace") == "mcp__molecule"
    with pytest.raises(openai.RateLimitError, match="slow down"):
        client.responses.create(model="m", input="hi")
