"""Reads of token usage and budgets: ``/workspaces/:id/budget``, ``/metrics`` and the canvas."""

from __future__ import annotations

import datetime

from django.db.models import Sum
from django.utils import timezone

from metering.models import WorkspaceTokenUsage
from workspaces.models import Workspace


def budget_summary(workspace: Workspace) -> dict:
    limit, spend = workspace.budget_limit, workspace.monthly_spend
    return {
        "budget_limit": limit,
        "monthly_spend": spend,
        "budget_remaining": None if limit is None else max(limit - spend, 0),
    }


def _month_start() -> datetime.date:
    return timezone.now().astimezone(datetime.UTC).date().replace(day=1)


def usage_daily(workspace_id, days: int = 30) -> list[dict]:
    since = timezone.now().astimezone(datetime.UTC).date() - datetime.timedelta(days=days - 1)
    rows = (WorkspaceTokenUsage.objects.filter(workspace_id=workspace_id, day__gte=since).values("day")
            .annotate(input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens"),
                      cost_cents=Sum("cost_cents")).order_by("day"))
    return [{"date": row["day"].isoformat(), "input_tokens": row["input_tokens"], "output_tokens": row["output_tokens"],
             "cost_cents": round(row["cost_cents"], 4)} for row in rows]


def workspace_metrics(workspace: Workspace) -> dict:
    """``GET /workspaces/:id/metrics``: this month's token usage, in total and per model, and spend."""
    month = WorkspaceTokenUsage.objects.filter(workspace_id=workspace.id, day__gte=_month_start())
    by_model = [
        {"model": row["model"], "input_tokens": row["input"], "output_tokens": row["output"],
         "total_tokens": row["input"] + row["output"], "call_count": row["calls"],
         "cost_cents": round(row["cost"], 4)}
        for row in month.values("model").annotate(input=Sum("input_tokens"), output=Sum("output_tokens"),
                                                  calls=Sum("call_count"), cost=Sum("cost_cents")).order_by("model")
    ]
    input_tokens = sum(row["input_tokens"] for row in by_model)
    output_tokens = sum(row["output_tokens"] for row in by_model)
    cost = sum(row["cost_cents"] for row in by_model)
    return {
        "workspace_id": str(workspace.id),
        "period_start": _month_start().isoformat(),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "call_count": sum(row["call_count"] for row in by_model),
        "estimated_cost_usd": round(cost / 100, 6),
        "monthly_spend": workspace.monthly_spend,
        "budget_limit": workspace.budget_limit,
        "by_model": by_model,
        "daily": usage_daily(workspace.id),
    }

