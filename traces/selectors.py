"""Reads of the traces app: a workspace's recent traces and one trace's span tree.

A trace belongs to every workspace that has a span in it (the A2A caller's runtime, the
platform's ``a2a.proxy`` span attributed to the target, the target's runtime…). A workspace
reading a trace sees its whole shape, but the attributes of spans of OTHER workspaces only when
the reader is an operator (``visible_to=None``): a callee learns the trace id from the
``traceparent`` it is sent, and must not read its caller's prompts through it.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict

from django.conf import settings
from django.db import connection

from metering.prices import cost_cents

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_TREE_SPANS = 2000
# The newest spans of a workspace looked at to find its recent traces (bounds the scan).
RECENT_SPANS_SCANNED = 20000
TRACE_ID = re.compile(r"[0-9a-f]{32}")
INPUT_KEYS = ("a2a.input_preview", "gen_ai.prompt")
OUTPUT_KEYS = ("a2a.output_preview", "gen_ai.completion")


def parse_trace_id(value: str) -> str | None:
    value = (value or "").lower()
    return value if TRACE_ID.fullmatch(value) and value.strip("0") else None


def external_url() -> str | None:
    return settings.TRACES_EXTERNAL_URL or None


_RECENT_SQL = """
WITH recent AS (
    SELECT trace_id, max(start_time) AS latest
    FROM (SELECT trace_id, start_time FROM trace_spans WHERE workspace_id = %(ws)s
          ORDER BY start_time DESC LIMIT %(scan)s) newest
    GROUP BY trace_id ORDER BY latest DESC LIMIT %(limit)s
)
SELECT s.trace_id, r.latest, min(s.start_time), max(s.end_time), count(*), bool_or(s.status = 'error'),
       (array_agg(s.name ORDER BY (s.parent_span_id = '') DESC, s.start_time))[1],
       jsonb_agg(jsonb_build_array(
           coalesce(s.attributes->>'gen_ai.response.model', s.attributes->>'gen_ai.request.model', ''),
           s.attributes->'gen_ai.usage.input_tokens', s.attributes->'gen_ai.usage.output_tokens'))
           FILTER (WHERE s.attributes ? 'gen_ai.usage.input_tokens' OR s.attributes ? 'gen_ai.usage.output_tokens'),
       (array_agg(coalesce(s.attributes->'a2a.input_preview', s.attributes->'gen_ai.prompt') ORDER BY s.start_time)
           FILTER (WHERE s.workspace_id = %(ws)s AND (s.attributes ? 'a2a.input_preview' OR s.attributes ? 'gen_ai.prompt')))[1],
       (array_agg(coalesce(s.attributes->'a2a.output_preview', s.attributes->'gen_ai.completion') ORDER BY s.end_time DESC)
           FILTER (WHERE s.workspace_id = %(ws)s AND (s.attributes ? 'a2a.output_preview' OR s.attributes ? 'gen_ai.completion')))[1]
FROM trace_spans s JOIN recent r ON r.trace_id = s.trace_id
GROUP BY s.trace_id, r.latest
ORDER BY r.latest DESC
"""


def _jsonb(value):
    """A jsonb column as Python (Django's connection hands jsonb over as text for its JSONField)."""
    return json.loads(value) if isinstance(value, str) else value


def _tokens(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def workspace_traces(workspace_id, *, limit: int = DEFAULT_LIMIT) -> dict:
    """``GET /workspaces/:id/traces``: the recent traces with a span of ``workspace_id``, newest
    first (by their latest span of this workspace), Langfuse-shaped, with the trace UI's URL."""
    with connection.cursor() as cursor:
        cursor.execute(_RECENT_SQL, {"ws": workspace_id, "scan": RECENT_SPANS_SCANNED, "limit": limit})
        rows = cursor.fetchall()
    data = []
    for trace_id, _latest, start, end, count, failed, root_name, usage, input_value, output_value in rows:
        input_tokens = output_tokens = 0
        cost = 0.0
        for model, spent_in, spent_out in _jsonb(usage) or []:
            spent_in, spent_out = _tokens(spent_in), _tokens(spent_out)
            input_tokens, output_tokens = input_tokens + spent_in, output_tokens + spent_out
            if model:
                cost += cost_cents(model, spent_in, spent_out)
        data.append({
            "id": trace_id, "name": root_name, "timestamp": _iso(start),
            "latency": round((end - start).total_seconds(), 6),
            "input": _jsonb(input_value), "output": _jsonb(output_value),
            "status": "error" if failed else "ok",
            "totalCost": round(cost, 6),
            "usage": {"input": input_tokens, "output": output_tokens, "total": input_tokens + output_tokens},
            "spans": count,
        })
    return {"data": data, "external_url": external_url()}


_TREE_SQL = """
SELECT span_id, parent_span_id, name, kind, workspace_id, service_name, start_time, end_time, duration_ms,
       status, status_message, attributes
FROM trace_spans
WHERE trace_id = %s AND EXISTS (SELECT 1 FROM trace_spans mine WHERE mine.trace_id = %s AND mine.workspace_id = %s)
ORDER BY start_time, span_id
LIMIT %s
"""


def trace_tree(workspace_id, trace_id: str, *, visible_to=None) -> dict | None:
    """``GET /workspaces/:id/traces/:trace_id``: the trace's spans depth first (children by start
    time; a span whose parent is missing is a root), or None when no span of it is
    ``workspace_id``'s. ``visible_to``: a workspace reading as itself — the attributes of other
    workspaces' spans are left out (``attributes_hidden``)."""
    with connection.cursor() as cursor:
        cursor.execute(_TREE_SQL, [trace_id, trace_id, workspace_id, MAX_TREE_SPANS])
        rows = cursor.fetchall()
    if not rows:
        return None
    spans = {}
    for span_id, parent, name, kind, owner, service, start, end, duration, status, message, attributes in rows:
        hidden = visible_to is not None and owner is not None and str(owner) != str(visible_to)
        spans[span_id] = {
            "span_id": span_id, "parent_span_id": parent, "name": name, "kind": kind,
            "workspace_id": str(owner) if owner else None, "service": service, "start": _iso(start), "end": _iso(end),
            "duration_ms": duration, "status": status, "status_message": message,
            "attributes": {} if hidden else _jsonb(attributes), "_start": start,
        }
        if hidden:
            spans[span_id]["attributes_hidden"] = True
    children = defaultdict(list)
    roots = []
    for span in spans.values():  # already in start order
        parent = span["parent_span_id"]
        (children[parent] if parent and parent in spans and parent != span["span_id"] else roots).append(span)
    first = min(span["_start"] for span in spans.values())
    ordered, seen = [], set()
    stack = [(root, 0) for root in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        if span["span_id"] in seen:
            continue
        seen.add(span["span_id"])
        span["depth"] = depth
        span["offset_ms"] = round((span.pop("_start") - first).total_seconds() * 1000, 3)
        ordered.append(span)
        stack.extend((child, depth + 1) for child in reversed(children[span["span_id"]]))
    # A parent cycle (a → b → a) has no root: show those spans at the top level rather than lose them.
    for span in spans.values():
        if span["span_id"] not in seen:
            span["depth"] = 0
            span["offset_ms"] = round((span.pop("_start") - first).total_seconds() * 1000, 3)
            ordered.append(span)
    return {"id": trace_id, "spans": ordered}
