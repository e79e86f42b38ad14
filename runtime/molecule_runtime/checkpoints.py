"""Durable task steps: a long task survives a restart (platform-api.md §19 checkpoints).

While a task runs, every tool call that returned is written to the platform as a checkpoint of
the workflow ``task-<A2A task id>`` (``POST /workspaces/:id/checkpoints``): step 0 ``task`` holds
the request text — written with the first tool step, so a task that calls no tool costs nothing —
and steps 1…n ``tool-<n>`` the tool, its input and a preview of its result. The workflow is deleted
when the task ends (answered, failed, or cancelled by ``tasks/cancel``); a task cut short by a
stop (SIGTERM: the platform restarts the workspace) or a crash leaves it behind.

At boot (adapter setup) the runtime asks for the workspace's latest checkpoint
(``GET …/checkpoints/latest``) and, when it belongs to such an interrupted task, for that workflow's
steps. The next task the agent gets starts with a note naming the interrupted request and the steps
already done, with their results, so the agent can continue rather than redo them; the note is
written at once as that task's own step 0 (a second restart keeps it) and the old workflow deleted.

Everything here is best effort: a platform that cannot answer is logged, and a task never fails
because a checkpoint could not be written.
"""

from __future__ import annotations

import contextvars
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from .platform import PlatformError

log = logging.getLogger(__name__)

WORKFLOW_PREFIX = "task-"
TASK_STEP = "task"
MAX_TEXT = 4000  # characters of the request kept in step 0
MAX_INPUT = 1000
MAX_OUTPUT = 2000
NOTE_STEPS = 20  # the most recent steps the resume note lists
NOTE_OUTPUT = 500
TIMEOUT = 3.0

_current: contextvars.ContextVar["TaskRecord | None"] = contextvars.ContextVar("molecule_task_record", default=None)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)


@dataclass
class Interrupted:
    """A task a previous process of this workspace did not finish."""

    workflow_id: str
    text: str
    steps: list[dict] = field(default_factory=list)  # [{tool, input, output}] in order

    def note(self) -> str:
        lines = ["[Resumed after a restart] Before this workspace restarted you were working on this request "
                 "and did not finish it:", "", _clip(self.text, MAX_TEXT), ""]
        if self.steps:
            shown = self.steps[-NOTE_STEPS:]
            lines.append(f"Steps already done ({len(self.steps)} tool call(s)"
                         + (f", the last {len(shown)} shown" if len(shown) < len(self.steps) else "") + "):")
            first = len(self.steps) - len(shown) + 1
            for n, step in enumerate(shown, start=first):
                lines.append(f"{n}. {step.get('tool')}({_clip(str(step.get('input', '')), 300)}) → "
                             f"{_clip(str(step.get('output', '')), NOTE_OUTPUT)}")
            lines.append("")
        lines.append("Do not redo those steps. If the message below asks you to continue (or repeats that request), "
                     "carry on from where you stopped; otherwise just answer it.")
        return "\n".join(lines)


class TaskRecord:
    """The checkpoints of one running task (set as the task's context by :meth:`TaskCheckpoints.begin`)."""

    def __init__(self, owner: "TaskCheckpoints", task_key: str, text: str):
        self.owner = owner
        self.workflow_id = WORKFLOW_PREFIX + (task_key or uuid.uuid4().hex)
        self.text = text
        self.steps = 0
        self.started = False

    async def start(self) -> None:
        """Write step 0 (the request) if it is not written yet."""
        if not self.started:
            self.started = await self.owner.write(self.workflow_id, TASK_STEP, 0, {"text": _clip(self.text, MAX_TEXT)})

    async def tool_step(self, tool: str, args: Any, result: Any) -> None:
        await self.start()
        self.steps += 1
        await self.owner.write(self.workflow_id, f"tool-{self.steps}", self.steps, {
            "tool": tool, "input": _clip(_as_text(args), MAX_INPUT), "output": _clip(_as_text(result), MAX_OUTPUT)})


class TaskCheckpoints:
    """Checkpoints of this workspace's tasks on the platform (one per runtime process)."""

    def __init__(self, platform: Any):
        self.platform = platform
        self.interrupted: Interrupted | None = None

    # ------------------------------------------------------------------ platform calls (best effort)
    async def write(self, workflow_id: str, step_name: str, step_index: int, payload: dict) -> bool:
        try:
            await self.platform.checkpoint_upsert(workflow_id=workflow_id, step_name=step_name,
                                                  step_index=step_index, payload=payload, timeout=TIMEOUT)
            return True
        except (PlatformError, OSError, ValueError) as exc:
            log.warning("checkpoint %s/%s not written: %s", workflow_id, step_name, exc)
            return False

    async def forget(self, workflow_id: str) -> None:
        try:
            await self.platform.checkpoint_delete(workflow_id, timeout=TIMEOUT)
        except (PlatformError, OSError, ValueError) as exc:
            log.warning("checkpoints of %s not deleted: %s", workflow_id, exc)

    async def load_interrupted(self) -> Interrupted | None:
        """At boot: the task a previous process left unfinished, if the latest checkpoint is one."""
        try:
            latest = await self.platform.checkpoint_latest(timeout=TIMEOUT)
            workflow_id = latest.get("workflow_id") if isinstance(latest, dict) else None
            if not isinstance(workflow_id, str) or not workflow_id.startswith(WORKFLOW_PREFIX):
                return None
            rows = await self.platform.checkpoint_steps(workflow_id, timeout=TIMEOUT)
        except PlatformError as exc:
            if exc.status != 404:  # 404: no checkpoint at all
                log.warning("cannot read the latest checkpoint, nothing to resume: %s", exc)
            return None
        except (OSError, ValueError) as exc:
            log.warning("cannot read the latest checkpoint, nothing to resume: %s", exc)
            return None
        text, steps = "", []
        for row in rows:
            payload = row.get("payload") if isinstance(row, dict) else None
            if not isinstance(payload, dict):
                continue
            if row.get("step_name") == TASK_STEP:
                text = str(payload.get("text", ""))
            elif payload.get("tool"):
                steps.append(payload)
        if not text:
            return None
        self.interrupted = Interrupted(workflow_id=workflow_id, text=text, steps=steps)
        log.info("an interrupted task (%s, %d step(s) done) will be offered to the next task", workflow_id, len(steps))
        return self.interrupted

    # ------------------------------------------------------------------ the executor's hooks
    async def begin(self, task_key: str, text: str) -> tuple[TaskRecord, str]:
        """A record for a new task and the text to run it with: on the first task after a boot
        that found an interrupted one, the resume note comes first (and is checkpointed at once)."""
        interrupted, self.interrupted = self.interrupted, None
        if interrupted is None:
            return TaskRecord(self, task_key, text), text
        run_text = f"{interrupted.note()}\n\n{text}"
        record = TaskRecord(self, task_key, run_text)
        await record.start()
        await self.forget(interrupted.workflow_id)
        return record, run_text

    async def end(self, record: TaskRecord) -> None:
        if record.started:
            await self.forget(record.workflow_id)


def activate(record: TaskRecord | None) -> contextvars.Token:
    """Make ``record`` the running task's record (tool calls made from this context find it)."""
    return _current.set(record)


def deactivate(token: contextvars.Token) -> None:
    _current.reset(token)


async def record_tool_step(tool: str, args: Any, result: Any) -> None:
    """Checkpoint a completed tool call of the running task (no-op outside a recorded task)."""
    record = _current.get()
    if record is not None:
        await record.tool_step(tool, args, result)
