"""trace_spans' constraints, as the database holds them."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from traces.models import TraceSpan
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


def _span(**fields) -> TraceSpan:
    now = timezone.now()
    return TraceSpan.objects.create(**{"trace_id": "a" * 32, "span_id": "b" * 16, "name": "s", "start_time": now,
                                       "end_time": now, **fields})


def test_a_span_is_unique_per_trace_and_span_id():
    _span()
    with pytest.raises(IntegrityError), transaction.atomic():
        _span()
    _span(span_id="c" * 16)


def test_deleting_a_workspace_in_sql_deletes_its_spans():
    """The database cascades by itself (a span exported while the workspace is purged)."""
    workspace = Workspace.objects.create(name="Gone")
    _span(workspace=workspace)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM workspaces WHERE id = %s", [workspace.id])
    assert not TraceSpan.objects.exists()
