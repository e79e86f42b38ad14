import pytest

from traces import otel
from traces.models import TraceSpan


@pytest.fixture(autouse=True)
def _no_leftover_spans():
    """Platform spans of earlier tests (any module's A2A calls) reach the database whenever their
    batch is exported, after those tests' own cleanup: flush them and start from an empty table."""
    otel.force_flush()
    TraceSpan.objects.all().delete()
