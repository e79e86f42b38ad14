"""OpenAIExecutor: a chat-completions loop with tool calling (spec/runtime.md §3.5, §7).

Per A2A request: system prompt + history + the user text → `chat.completions.create` with the
tools' function schemas. While the model asks for tools, each call runs (`tool_trace` records
it) and its JSON result goes back as a `tool` message; the first answer without tool calls is
the reply. After `max_tool_rounds` rounds that still end in tool calls the task fails with
`Agent error: …`. With `stream: true` (default) text deltas go out as A2A artifact chunks as
they arrive; otherwise each answer's text is sent as one chunk. Provider errors (HTTP 4xx/5xx,
connection errors) become `Agent error: <message>` and count in the heartbeat error rate.
Each call is a `chat <model>` span with its usage (telemetry.py); the task's summed usage goes
out as the reply's `metadata.usage`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ... import telemetry
from ..shared_runtime import LLMExecutor, LLMSettings, TextStream, run_tool_for_model, trace_start

log = logging.getLogger(__name__)


class ToolRoundsExceeded(RuntimeError):
    pass


class OpenAIExecutor(LLMExecutor):
    runtime_label = "openai"

    def __init__(self, *, settings: LLMSettings, **kwargs: Any):
        super().__init__(**kwargs)
        self.settings = settings
        self._client = None
        self._client_loop = None

    def client(self):
        """An AsyncOpenAI bound to the running loop (created lazily; the SDK is imported here)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            from openai import AsyncOpenAI

            kwargs: dict[str, Any] = {"api_key": self.settings.api_key, "max_retries": self.settings.max_retries}
            if self.settings.base_url:
                kwargs["base_url"] = self.settings.base_url
            if self.settings.timeout:
                kwargs["timeout"] = self.settings.timeout
            self._client = AsyncOpenAI(**kwargs)
            self._client_loop = loop
        return self._client

    def build_messages(self, text: str, history: list[tuple[str, str]]) -> list[dict]:
        messages: list[dict] = []
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.extend({"role": role, "content": content} for role, content in history)
        messages.append({"role": "user", "content": text})
        return messages

    async def _complete(self, messages: list[dict], schemas: list[dict], stream: TextStream) -> tuple[str, list[dict]]:
        """One model call → (text, tool_calls as [{id, name, arguments}]), in a `chat <model>` span
        carrying the call's usage (streamed calls ask for the final usage chunk)."""
        with telemetry.chat_span(self.settings.model, provider=self.settings.provider, messages=messages) as chat:
            return await self._call_model(messages, schemas, stream, chat)

    async def _call_model(self, messages: list[dict], schemas: list[dict], stream: TextStream,
                          chat: telemetry.ChatCall) -> tuple[str, list[dict]]:
        kwargs: dict[str, Any] = {"model": self.settings.model, "messages": messages}
        if schemas:
            kwargs["tools"] = schemas
        if self.settings.temperature is not None:
            kwargs["temperature"] = self.settings.temperature
        client = self.client()
        stream.new_artifact()
        if not self.settings.stream:
            response = await client.chat.completions.create(**kwargs)
            if not response.choices:
                raise RuntimeError("the model returned no choices")
            message = response.choices[0].message
            text = message.content or ""
            await stream.write(text)
            calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments or ""}
                     for c in (message.tool_calls or []) if getattr(c, "function", None) is not None]
            usage = getattr(response, "usage", None)
            chat.end(input_tokens=getattr(usage, "prompt_tokens", None),
                     output_tokens=getattr(usage, "completion_tokens", None),
                     finish_reasons=[c.finish_reason for c in response.choices], completion=text or calls,
                     response_model=getattr(response, "model", None))
            return text, calls

        pieces: list[str] = []
        slots: dict[int, dict] = {}
        usage = None
        finish_reasons: list[str] = []
        response_model = None
        chunks = await client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
        async for chunk in chunks:
            response_model = response_model or getattr(chunk, "model", None)
            if getattr(chunk, "usage", None) is not None:
                usage = chunk.usage
            if not chunk.choices:
                continue  # e.g. the usage chunk
            if chunk.choices[0].finish_reason:
                finish_reasons.append(chunk.choices[0].finish_reason)
            delta = chunk.choices[0].delta
            if delta is None:
                continue
            if delta.content:
                pieces.append(delta.content)
                await stream.write(delta.content)
            for call in delta.tool_calls or []:
                slot = slots.setdefault(call.index if call.index is not None else len(slots),
                                        {"id": "", "name": "", "arguments": ""})
                if call.id:
                    slot["id"] = call.id
                if call.function is not None:
                    if call.function.name and not slot["name"]:
                        slot["name"] = call.function.name
                    if call.function.arguments:
                        slot["arguments"] += call.function.arguments
        calls = [slots[i] for i in sorted(slots)]
        for n, tool_call in enumerate(calls):
            tool_call["id"] = tool_call["id"] or f"call_{n}"
        text = "".join(pieces)
        chat.end(input_tokens=getattr(usage, "prompt_tokens", None),
                 output_tokens=getattr(usage, "completion_tokens", None),
                 finish_reasons=finish_reasons, completion=text or calls, response_model=response_model)
        return text, calls

    async def run(self, text: str, history: list[tuple[str, str]], stream: TextStream, trace: list[dict]) -> str:
        from ...tools import tool_schemas

        tools = self.tools
        schemas = tool_schemas(tools) if tools else []
        messages = self.build_messages(text, history)
        for _round in range(self.settings.max_tool_rounds + 1):
            reply, calls = await self._complete(messages, schemas, stream)
            if not calls:
                return reply
            if _round == self.settings.max_tool_rounds:
                break
            messages.append({
                "role": "assistant", "content": reply or None,
                "tool_calls": [{"id": c["id"], "type": "function",
                                "function": {"name": c["name"], "arguments": c["arguments"] or "{}"}} for c in calls],
            })
            for call in calls:
                entry = trace_start(trace, call["name"], call["arguments"] or "{}")
                result = await run_tool_for_model(tools, call["name"], call["arguments"])
                entry["output_preview"] = result[:300]
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
        raise ToolRoundsExceeded(f"no final answer after {self.settings.max_tool_rounds} tool rounds "
                                 "(runtime_config.max_tool_rounds)")
