"""EchoExecutor: deterministic replies and scripted commands (spec/runtime.md §11).

Commands (the first word of the message):
- anything else      → `prefix + text` (with request history: `"[h=<n>] " + prefix + text`)
- `/tool <name> <json-args>` → calls the tool, replies with its JSON result, records tool_trace
- `/remember <text>` → `commit_memory(content=text)`; `/recall <query>` → `search_memory(query=…)`;
  `/delegate <peer> <task>` → `delegate_task(workspace_id=…, task=…)` (shorthands for /tool)
  where `<peer>` is a workspace id or a peer's NAME, resolved through `list_peers` (see
  :meth:`EchoExecutor.resolve_peer`), so a template can name its team members before their ids exist
- `/sleep <s>`       → waits s seconds (stopped by tasks/cancel), replies `slept <s>s`
- `/fail`            → raises; the reply is `Agent error: echo /fail requested`
- `/wedge <reason>`  → heartbeat `mark_wedged(reason)`, replies `wedged: <reason>`
- `/attach <path> [caption]` → replies `caption` (default `attached <name>`) with the file as a
  FilePart (uploaded to the platform's chat uploads: a `workspace:` URI)
Files attached to the message are listed after its text (`molecule_runtime.attachments`), so the
echo shows what the adapter received.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import time
import uuid
from typing import Any, Awaitable, Callable

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.helpers.proto_helpers import new_task
from a2a.types import Part, TaskState

from ...attachments import ChatFiles, describe
from ..base import finish_task

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "echo: "
NO_TEXT = "Error: message contained no text content."
FAIL_MESSAGE = "echo /fail requested"
CHUNK_SIZE = 32
TRACE_MAX = 200
LIVE_PEER = ("online", "degraded")
UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
PEER_POLL_SECONDS = 1.0


def extract_text(context: RequestContext) -> str:
    """Join the text of every part with a space, stripped (spec §3.5 step 1)."""
    message = context.message
    if message is None:
        return ""
    return " ".join(p.text for p in message.parts if p.text).strip()


def history_length(context: RequestContext) -> int:
    history = None
    try:
        history = (context.metadata or {}).get("history")
    except Exception:  # a malformed metadata struct must not break the reply
        history = None
    if history is None and context.message is not None and context.message.HasField("metadata"):
        from google.protobuf.json_format import MessageToDict

        history = MessageToDict(context.message.metadata).get("history")
    return len(history) if isinstance(history, list) else 0


def chunks(text: str, size: int = CHUNK_SIZE) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


class EchoExecutor(AgentExecutor):
    def __init__(self, *, heartbeat: Any = None, beat_now: Callable[[], Awaitable[Any]] | None = None,
                 tools: dict[str, Callable[..., Any]] | None = None, prefix: str = DEFAULT_PREFIX,
                 transcript: Callable[[str, str], None] | None = None, chat_files: ChatFiles | None = None,
                 peer_wait_seconds: float = 0.0):
        self.heartbeat = heartbeat
        self.peer_wait_seconds = max(0.0, peer_wait_seconds)
        self.chat_files = chat_files or ChatFiles()
        self.beat_now = beat_now
        self.tools = dict(tools or {})
        self.prefix = prefix
        self.transcript = transcript
        self._cancel_events: dict[str, asyncio.Event] = {}

    # -------------------------------------------------------------- heartbeat hooks
    async def _push(self) -> None:
        if self.beat_now is None:
            return
        try:
            await self.beat_now()
        except Exception:
            log.warning("heartbeat push failed", exc_info=True)

    async def _task_started(self, brief: str) -> None:
        if self.heartbeat is not None:
            self.heartbeat.task_started(brief)
        await self._push()

    async def _task_finished(self, ok: bool, error: str | None) -> None:
        if self.heartbeat is not None:
            self.heartbeat.task_finished(ok, error)
        await self._push()

    # -------------------------------------------------------------- commands
    async def call_tool(self, name: str, args: dict, trace: list[dict]) -> str:
        fn = self.tools.get(name)
        if fn is None:
            raise ValueError(f"unknown tool '{name}' (available: {', '.join(sorted(self.tools)) or 'none'})")
        entry = {"tool": name, "input": json.dumps(args, default=str)[:500]}
        if len(trace) < TRACE_MAX:
            trace.append(entry)
        result = fn(**args)
        if inspect.isawaitable(result):
            result = await result
        out = json.dumps(result, default=str)
        entry["output_preview"] = out[:300]
        return out

    async def _reply(self, text: str, context: RequestContext, trace: list[dict], files: list[Part]) -> str | None:
        """The reply text (None: cancelled); file parts to send with it go to ``files``."""
        command, _, rest = text.partition(" ")
        rest = rest.strip()
        if command == "/tool":
            name, _, raw_args = rest.partition(" ")
            if not name:
                raise ValueError("usage: /tool <name> <json-args>")
            try:
                args = json.loads(raw_args) if raw_args.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"/tool {name}: arguments are not valid JSON: {exc.msg}") from None
            if not isinstance(args, dict):
                raise ValueError(f"/tool {name}: arguments must be a JSON object")
            return await self.call_tool(name, args, trace)
        if command == "/remember":
            return await self.call_tool("commit_memory", {"content": rest}, trace)
        if command == "/recall":
            return await self.call_tool("search_memory", {"query": rest}, trace)
        if command == "/delegate":
            target, task = await self.resolve_peer(rest)
            return await self.call_tool("delegate_task", {"workspace_id": target, "task": task}, trace)
        if command == "/sleep":
            try:
                seconds = float(rest)
            except ValueError:
                raise ValueError(f"/sleep needs a number of seconds, got {rest!r}") from None
            event = self._cancel_events.setdefault(context.task_id or "", asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), timeout=seconds)
                return None  # cancelled: tasks/cancel already emitted the terminal status
            except asyncio.TimeoutError:
                return f"slept {rest}s"
        if command == "/attach":
            path, _, caption = rest.partition(" ")
            if not path:
                raise ValueError("usage: /attach <path> [caption]")
            part = await self.chat_files.file_part(path)
            files.append(part)
            return caption.strip() or f"attached {part.filename}"
        if command == "/fail":
            raise RuntimeError(FAIL_MESSAGE)
        if command == "/wedge":
            reason = rest or "wedged by /wedge"
            if self.heartbeat is not None:
                self.heartbeat.mark_wedged(reason)
            return f"wedged: {reason}"
        n = history_length(context)
        return (f"[h={n}] " if n else "") + self.prefix + text

    # -------------------------------------------------------------- /delegate targets
    async def _peers(self) -> list[dict] | str:
        """The peers ``list_peers`` gives (the runtime's own tool), or its error text."""
        fn = self.tools.get("list_peers")
        if fn is None:
            return "no list_peers tool"
        result = fn()
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, dict) or result.get("success") is False:
            return str(result.get("error") if isinstance(result, dict) else result)
        return [p for p in result.get("peers") or [] if isinstance(p, dict)]

    @staticmethod
    def _match(rest: str, peers: list[dict]) -> tuple[str, list[dict], str] | None:
        """``(name, peers so named, task)``: the longest peer name that begins ``rest`` as whole
        words (case-insensitive), or ``rest``'s quoted name; None when no peer name fits."""
        if rest[0] in "\"'":
            name, quote, task = rest[1:].partition(rest[0])
            if not quote:
                raise ValueError(f"/delegate: unterminated quote in {rest!r}")
            named = [p for p in peers if str(p.get("name") or "").casefold() == name.strip().casefold()]
            return name.strip(), named, task.strip()
        best: tuple[str, list[dict], str] | None = None
        for peer in peers:
            name = str(peer.get("name") or "").strip()
            size = len(name)
            if not name or rest[:size].casefold() != name.casefold() or (len(rest) > size and not rest[size].isspace()):
                continue
            if best is None or size > len(best[0]):
                best = (name, [peer], rest[size:].strip())
            elif size == len(best[0]):
                best[1].append(peer)
        return best

    async def resolve_peer(self, rest: str) -> tuple[str, str]:
        """``(workspace_id, task)`` of ``/delegate <peer> <task>``.

        ``<peer>`` is a peer's id (as before) or its name — quoted (``"Dev Lead"``) or not, the
        longest peer name that begins the text wins — looked up in the peers ``list_peers`` gives.
        A name no peer has, or one several peers share, is an error reply. With
        ``runtime_config.peer_wait_seconds`` (a team lead whose initial prompt runs while its team
        is still starting) the lookup waits that long for the named peer to exist and be online.
        """
        if not rest:
            raise ValueError("usage: /delegate <peer name or workspace id> <task>")
        first, _, after = rest.partition(" ")
        if UUID_TEXT.fullmatch(first):
            # An id goes straight to delegate_task, which checks it: no list_peers call (and no
            # extra tool span in the task's trace) for the form that needs no lookup.
            return first, after.strip()
        deadline = time.monotonic() + self.peer_wait_seconds
        while True:
            peers = await self._peers()
            if isinstance(peers, str):  # no peer list: only an id can be used
                raise ValueError(f"/delegate: cannot look up peer {first!r}: {peers}")
            if any(str(p.get("id")) == first for p in peers):
                return first, after.strip()  # a peer's id that is not a UUID
            found = self._match(rest, peers)
            if found is not None and len(found[1]) > 1:
                ids = ", ".join(str(p.get("id")) for p in found[1])
                raise ValueError(f"/delegate: {len(found[1])} peers are named {found[0]!r} ({ids}); use the id")
            live = found is not None and bool(found[1]) and found[1][0].get("status") in LIVE_PEER
            if live or time.monotonic() >= deadline:
                break
            await asyncio.sleep(PEER_POLL_SECONDS)
        if found is None or not found[1]:
            names = ", ".join(sorted(str(p.get("name")) for p in peers if p.get("name"))) or "none"
            wanted = found[0] if found is not None else (rest if len(rest) <= 60 else rest[:60] + "…")
            raise ValueError(f"/delegate: no peer matches {wanted!r}: give a peer's name or id (peers: {names})")
        name, [peer], task = found
        if not task:
            raise ValueError(f"/delegate: no task given for {name!r}")
        return str(peer.get("id")), task

    # -------------------------------------------------------------- AgentExecutor
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        text = (extract_text(context) + describe(await self.chat_files.receive(context.message))).strip()
        if not text:
            await event_queue.enqueue_event(updater.new_agent_message([Part(text=NO_TEXT)]))
            return
        if self.transcript:
            self.transcript("user", text)
        await self._task_started(text)
        trace: list[dict] = []
        files: list[Part] = []
        ok, error = True, None
        try:
            if context.current_task is None:  # a2a-sdk 1.x: the Task must be enqueued first
                await event_queue.enqueue_event(new_task(context.task_id, context.context_id,
                                                         TaskState.TASK_STATE_SUBMITTED,
                                                         history=[context.message]))
            await updater.start_work()
            reply = await self._reply(text, context, trace, files)
            if reply is None:
                return
            artifact_id = uuid.uuid4().hex
            for i, piece in enumerate(chunks(reply)):
                await updater.add_artifact([Part(text=piece)], artifact_id=artifact_id,
                                           append=i > 0, last_chunk=False)
        except Exception as exc:
            ok, error = False, f"{exc}"
            log.info("echo task failed: %s", exc)
            reply, files = f"Agent error: {exc}", []
        finally:
            self._cancel_events.pop(context.task_id or "", None)
            await self._task_finished(ok, error)
        await finish_task(updater, reply=reply, ok=ok, trace=trace, transcript=self.transcript, files=files)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        event = self._cancel_events.setdefault(context.task_id or "", asyncio.Event())
        event.set()
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.cancel()
