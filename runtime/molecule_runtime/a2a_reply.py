"""The text of a peer's A2A reply, whatever shape the peer answered in (spec/runtime.md §4.3).

Peers run different A2A stacks, so a ``message/send`` result can be:

- a 0.3 Message (``{"kind": "message", "parts": [{"kind": "text", "text": …}]}``) or a 1.0 one
  (parts without ``kind``), bare or wrapped as 1.0's ``{"message": {…}}``;
- a Task (``{"kind": "task", "artifacts": […], "status": {"message": …}}``, or 1.0's ``{"task": …}``):
  its artifacts are the output, and ``status.message`` carries the final word (often the whole
  answer, sometimes only "done" after streamed artifacts);
- the events of a stream (a list of Task / Message / ``status-update`` / ``artifact-update``
  results), where an artifact arrives in chunks: ``append: true`` continues the artifact with the
  same ``artifactId``.

Text is joined as the peer sent it: the chunks and parts of one artifact are concatenated with
nothing in between, separate artifacts and messages are separated by a blank line, and a status
message that only repeats what the artifacts said is not added twice.
"""

from __future__ import annotations

from typing import Any

SEPARATOR = "\n\n"


def _parts_text(parts: Any) -> str:
    texts = []
    for part in parts or []:
        if not isinstance(part, dict):
            continue
        kind = part.get("kind", part.get("type", "text"))
        text = part.get("text")
        if text is None and isinstance(part.get("root"), dict):  # pydantic-RootModel dumps of 0.3 parts
            kind, text = part["root"].get("kind", "text"), part["root"].get("text")
        if kind == "text" and text is not None:
            texts.append(str(text))
    return "".join(texts)


def _unwrap(result: dict) -> dict:
    """1.0 wraps results by type (``{"task": …}``, ``{"message": …}``, ``{"artifactUpdate": …}``…)."""
    if len(result) == 1:
        (key, inner), = result.items()
        if key in ("task", "message", "msg", "statusUpdate", "artifactUpdate") and isinstance(inner, dict):
            return {**inner, "kind": {"task": "task", "message": "message", "msg": "message",
                                      "statusUpdate": "status-update", "artifactUpdate": "artifact-update"}[key]}
    return result


class _Assembly:
    """Artifacts by id (in first-seen order), then messages, then the last status message."""

    def __init__(self) -> None:
        self.artifacts: dict[str, list[str]] = {}
        self.messages: list[str] = []
        self.status_text = ""

    def artifact(self, artifact: dict, *, append: bool) -> None:
        key = str(artifact.get("artifactId") or artifact.get("artifact_id") or f"#{len(self.artifacts)}")
        text = _parts_text(artifact.get("parts"))
        chunks = self.artifacts.setdefault(key, [])
        if not append:
            chunks.clear()
        chunks.append(text)

    def add(self, result: Any) -> None:
        if not isinstance(result, dict):
            return
        result = _unwrap(result)
        kind = result.get("kind")
        if kind == "artifact-update" or (kind is None and isinstance(result.get("artifact"), dict)):
            self.artifact(result.get("artifact") or {}, append=bool(result.get("append")))
            return
        if kind == "message" or (kind is None and "parts" in result):
            text = _parts_text(result.get("parts"))
            if text:
                self.messages.append(text)
            return
        for artifact in result.get("artifacts") or []:  # a Task (or a status update carrying its task)
            if isinstance(artifact, dict):
                self.artifact(artifact, append=False)
        status = result.get("status")
        if isinstance(status, dict) and isinstance(status.get("message"), dict):
            text = _parts_text(_unwrap(status["message"]).get("parts"))
            if text:
                self.status_text = text

    def text(self) -> str:
        pieces = ["".join(chunks) for chunks in self.artifacts.values()]
        pieces = [p for p in pieces if p] + self.messages
        body = SEPARATOR.join(pieces)
        status = self.status_text
        if not status or status.strip() in body:
            return body
        if body and body.strip() in status:  # the final message restates the streamed artifacts in full
            return status
        return SEPARATOR.join(p for p in (body, status) if p)


def reply_text(result: Any) -> str:
    """The text of a ``message/send`` result (one object) or of a stream's results (a list)."""
    if result is None:
        return ""
    if isinstance(result, str):
        return result
    assembly = _Assembly()
    for item in result if isinstance(result, list) else [result]:
        assembly.add(item)
    return assembly.text()
