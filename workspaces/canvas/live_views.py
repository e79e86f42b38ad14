"""Fragments of the canvas's live part: the A2A overlay's edges (canvas spec §1.4).

One request for the whole overlay instead of the original's one activity read per workspace.
"""

from __future__ import annotations

from django.utils import timezone

from molecule_site.wire import json_response, rfc3339
from workspaces.canvas import edges as canvas_edges
from workspaces.canvas.views import operator_page


@operator_page
def edges(request):
    """``{"edges": [{source, target, calls, last_at, age_seconds}], "window_seconds"}``: ages
    are the server's, so a browser with a skewed clock still labels them right."""
    now = timezone.now()
    rows = canvas_edges.a2a_edges(now=now)
    return json_response({
        "window_seconds": int(canvas_edges.WINDOW.total_seconds()),
        "edges": [
            {
                "source": str(edge.source), "target": str(edge.target), "calls": edge.calls,
                "last_at": rfc3339(edge.last_at), "age_seconds": max(0, round((now - edge.last_at).total_seconds())),
            }
            for edge in rows
        ],
    })
