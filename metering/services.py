"""Metering: the A2A proxy's replies → ``workspace_token_usage`` and ``monthly_spend``; budgets.

``usage_record`` runs on the proxy's event loop (raw SQL through ``molecule_site.adb``). One
transaction adds the call to its (workspace, model, day) row and sets ``workspaces.monthly_spend``
to this calendar month's metered cost (UTC, rounded up to whole cents), so the month rolls over by
itself and the proxy's 402 gate (``monthly_spend >= budget_limit``) trips on real spend. Crossing
80 % and 100 % of the budget emits ``BUDGET_WARNING`` / ``BUDGET_EXCEEDED`` once: only the call
that crosses the line sees the old spend below it. Each crossing also files an approval request
(``budget_warning`` / ``budget_exceeded``) so a human is asked to look: it is a notice with the
figures, not a switch — the budget changes only through ``PATCH /workspaces/:id/budget``.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from activity.approvals import approval_create
from activity.events import aemit, emit
from metering.prices import cost_cents
from molecule_site import adb
from workspaces.models import Workspace

# Bounds on what an agent may report for one call: junk or overflow is not metered.
MAX_TOKENS_PER_CALL = 100_000_000
MAX_MODEL_NAME = 200
WARNING_FRACTION = 0.8


@dataclass(frozen=True)
class Usage:
    model: str
    input_tokens: int
    output_tokens: int
    calls: int = 1


# Set by our runtime on a model call's span when its usage rides on the task's A2A reply too
# (which the proxy meters): such spans are not metered a second time from the trace.
ON_REPLY_ATTRIBUTE = "molecule.usage.on_reply"


def _count(value) -> int | None:
    # 20.0 counts as 20: A2A metadata is a protobuf Struct in a2a-sdk 1.x, whose numbers are doubles
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS_PER_CALL:
        return None
    return value


def _usage(model, input_value, output_value) -> Usage | None:
    """One reported call's usage, or None when a count is out of bounds or both are zero."""
    input_tokens, output_tokens = _count(input_value), _count(output_value)
    if input_tokens is None or output_tokens is None or input_tokens + output_tokens == 0:
        return None
    return Usage(model=model[:MAX_MODEL_NAME] if isinstance(model, str) else "",
                 input_tokens=input_tokens, output_tokens=output_tokens)


def usage_from_reply(decoded) -> Usage | None:
    """The ``usage`` an agent's JSON-RPC reply reports (spec §8.4: ``result.usage`` or top-level
    ``usage``; our runtime puts it in ``result.metadata.usage``), or None when there is none."""
    if not isinstance(decoded, dict):
        return None
    result = decoded.get("result") if isinstance(decoded.get("result"), dict) else {}
    metadata = result.get("metadata") if isinstance(result.get("metadata"), dict) else {}
    for candidate in (result.get("usage"), decoded.get("usage"), metadata.get("usage")):
        if isinstance(candidate, dict):
            return _usage(candidate.get("model"), candidate.get("input_tokens", 0), candidate.get("output_tokens", 0))
    return None


def usage_from_spans(attribute_sets) -> list[Usage]:
    """The usage of the ``chat`` spans (GenAI conventions) among the attribute dicts of newly stored
    spans, summed per model, for the calls no A2A reply reports: an external agent's own model
    calls, exported to the platform's receiver. Spans marked :data:`ON_REPLY_ATTRIBUTE` are left out."""
    totals: dict[str, Usage] = {}
    for attributes in attribute_sets:
        if attributes.get("gen_ai.operation.name") != "chat" or attributes.get(ON_REPLY_ATTRIBUTE) is True:
            continue
        call = _usage(attributes.get("gen_ai.response.model") or attributes.get("gen_ai.request.model"),
                      attributes.get("gen_ai.usage.input_tokens", 0), attributes.get("gen_ai.usage.output_tokens", 0))
        if call is None:
            continue
        total = totals.get(call.model)
        totals[call.model] = call if total is None else Usage(
            model=call.model, input_tokens=total.input_tokens + call.input_tokens,
            output_tokens=total.output_tokens + call.output_tokens, calls=total.calls + 1)
    return list(totals.values())


_UPSERT_SQL = """
INSERT INTO workspace_token_usage (id, workspace_id, model, day, input_tokens, output_tokens, call_count, cost_cents,
                                   updated_at)
VALUES (%s, %s, %s, (now() AT TIME ZONE 'UTC')::date, %s, %s, %s, %s, now())
ON CONFLICT (workspace_id, model, day) DO UPDATE SET
    input_tokens = workspace_token_usage.input_tokens + EXCLUDED.input_tokens,
    output_tokens = workspace_token_usage.output_tokens + EXCLUDED.output_tokens,
    call_count = workspace_token_usage.call_count + EXCLUDED.call_count,
    cost_cents = workspace_token_usage.cost_cents + EXCLUDED.cost_cents,
    updated_at = now()
"""
_LOCK_SQL = "SELECT monthly_spend, budget_limit FROM workspaces WHERE id = %s FOR UPDATE"
_MONTH_SQL = """
SELECT COALESCE(SUM(cost_cents), 0) FROM workspace_token_usage
WHERE workspace_id = %s AND day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date
"""
_SPEND_SQL = "UPDATE workspaces SET monthly_spend = %s WHERE id = %s"


def crossed(before: int, after: int, limit: int | None) -> list[str]:
    """The budget events a change of spend from ``before`` to ``after`` (cents) calls for."""
    if limit is None:
        return []
    events = []
    if before < WARNING_FRACTION * limit <= after:
        events.append("BUDGET_WARNING")
    if before < limit <= after:
        events.append("BUDGET_EXCEEDED")
    return events


async def usage_record(*, workspace_id: uuid.UUID, usage: Usage) -> int | None:
    """Meter one call's ``usage``; returns the workspace's new monthly spend (None: no such row)."""
    cost = cost_cents(usage.model, usage.input_tokens, usage.output_tokens)
    async with adb.transaction() as conn:
        row = await adb.fetchone(_LOCK_SQL, [workspace_id], conn=conn)
        if row is None:
            return None
        before, limit = row
        await adb.execute(_UPSERT_SQL, [uuid.uuid4(), workspace_id, usage.model, usage.input_tokens,
                                        usage.output_tokens, usage.calls, cost], conn=conn)
        (month_cost,) = await adb.fetchone(_MONTH_SQL, [workspace_id], conn=conn)
        after = math.ceil(month_cost - 1e-9)
        await adb.execute(_SPEND_SQL, [after, workspace_id], conn=conn)
    await spend_changed(workspace_id=workspace_id, before=before, after=after, limit=limit)
    return after


async def spend_changed(*, workspace_id: uuid.UUID, before: int, after: int, limit: int | None) -> None:
    """The monthly spend moved from ``before`` to ``after`` cents (metered here, or reported by
    the agent's heartbeat), committed: BUDGET_WARNING / BUDGET_EXCEEDED and their approval
    requests for each line it crossed."""
    for event_type in crossed(before, after, limit):
        figures = {"monthly_spend": after, "budget_limit": limit,
                   "percent": round(100 * after / limit, 1) if limit else None}
        await aemit(event_type, workspace_id, figures)
        await sync_to_async(_budget_approval)(workspace_id=workspace_id, event_type=event_type, figures=figures)


def _budget_approval(*, workspace_id: uuid.UUID, event_type: str, figures: dict) -> None:
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return
    spend, limit = figures["monthly_spend"], figures["budget_limit"]
    line = "80 % of its" if event_type == "BUDGET_WARNING" else "its whole"
    approval_create(
        workspace=workspace, action=event_type.lower(), task_id=None, context=figures,
        reason=f"{workspace.name} has spent {line} monthly budget: {spend} of {limit} cents "
               f"({figures['percent']} %). Raise the budget or let further calls be refused.",
    )


def budget_set(*, workspace: Workspace, budget_limit: int | None) -> Workspace:
    """``PATCH /workspaces/:id/budget``: a new limit (None = no limit); ``BUDGET_UPDATED`` after commit."""
    with transaction.atomic():
        Workspace.objects.filter(pk=workspace.pk).update(budget_limit=budget_limit, updated_at=timezone.now())
        workspace.refresh_from_db(fields=["budget_limit", "monthly_spend"])
        emit("BUDGET_UPDATED", workspace.id, {"budget_limit": budget_limit, "monthly_spend": workspace.monthly_spend})
    return workspace
