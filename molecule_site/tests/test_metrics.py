"""Per-workspace series on ``/metrics``: fleet gauges read from the DB, A2A calls observed by the proxy."""

from __future__ import annotations

import datetime

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from molecule_site import metrics
from registry.tests.test_proxy import (  # noqa: F401 - fixtures
    _close_proxy_db_threads,
    _proxy_settings,
    a2a,
    a2a_server,
    tree,
)
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]


def scrape() -> dict[str, list]:
    text = Client().get("/metrics").content.decode()
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples, metric, **labels):
    found = [v for got, v in samples.get(metric, []) if all(got.get(k) == want for k, want in labels.items())]
    return sum(found) if found else None


def test_workspace_gauges_show_each_workspace(db):
    beat = timezone.now() - datetime.timedelta(seconds=30)
    online = Workspace.objects.create(name="PM", status=WorkspaceStatus.ONLINE, active_tasks=3, last_heartbeat_at=beat)
    failed = Workspace.objects.create(name="Dev", status=WorkspaceStatus.FAILED)
    samples = scrape()
    assert value(samples, "molecule_workspace_status", workspace_id=str(online.id), name="PM", status="online") == 1
    assert value(samples, "molecule_workspace_status", workspace_id=str(failed.id), status="failed") == 1
    assert value(samples, "molecule_workspace_active_tasks", workspace_id=str(online.id)) == 3
    assert 29 <= value(samples, "molecule_workspace_heartbeat_age_seconds", workspace_id=str(online.id)) < 120
    assert value(samples, "molecule_workspace_heartbeat_age_seconds", workspace_id=str(failed.id)) is None


def test_workspaces_past_the_cap_are_summed_into_other(db, settings):
    settings.METRICS_MAX_WORKSPACES = 2
    for index in range(5):
        Workspace.objects.create(name=f"w{index}", status=WorkspaceStatus.ONLINE, active_tasks=1)
    samples = scrape()
    ids = {labels["workspace_id"] for labels, _ in samples["molecule_workspace_status"]}
    assert len(ids - {"other"}) == 2
    assert value(samples, "molecule_workspace_status", workspace_id="other", status="online") == 3
    assert value(samples, "molecule_workspace_active_tasks", workspace_id="other") == 3


def test_a2a_label_cap_keeps_cardinality_bounded(settings, monkeypatch):
    monkeypatch.setattr(metrics, "_seen_workspaces", set())
    settings.METRICS_MAX_WORKSPACES = 1
    assert metrics.workspace_label("a") == "a"
    assert metrics.workspace_label("b") == "other"
    assert metrics.workspace_label("a") == "a"


def test_a2a_counters_move_after_a_proxied_call(tree):
    target = str(tree["Dev"].id)
    before = scrape()
    call = a2a(tree["Dev"], caller=tree["PM"])
    assert call.response.status_code == 200
    after = scrape()
    ok_before = value(before, "molecule_a2a_calls_total", workspace_id=target, outcome="ok") or 0
    assert value(after, "molecule_a2a_calls_total", workspace_id=target, outcome="ok") == ok_before + 1
    count_before = value(before, "molecule_a2a_call_duration_seconds_count", workspace_id=target) or 0
    assert value(after, "molecule_a2a_call_duration_seconds_count", workspace_id=target) == count_before + 1


def test_grafana_dashboard_queries_only_series_the_platform_exports(tree, a2a_server):
    """docs/grafana/molecule-dashboard.json: every molecule_* series a panel queries is on /metrics once a
    workspace has beaten, been called and used tokens — a renamed metric breaks this, not the dashboard."""
    import json
    import re
    from pathlib import Path

    from registry.tests.test_proxy import point

    dashboard = json.loads((Path(__file__).resolve().parents[2] / "docs/grafana/molecule-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\bmolecule_\w+", target["expr"])}
    assert {"molecule_workspace_status", "molecule_a2a_calls_total", "molecule_workspace_tokens_total"} <= queried
    pm = point(tree["PM"], a2a_server.url("usage"))
    Workspace.objects.filter(pk=pm.pk).update(last_heartbeat_at=timezone.now())
    assert a2a(pm).status == 200
    exported = set(scrape())
    assert queried - exported == set()
