"""Platform-level endpoints that belong to no app: health (spec §17)."""

from django.views.decorators.http import require_GET

from molecule_site.wire import json_response


@require_GET
def health(request):
    """Liveness probe for load balancers: no dependency checks, as in the original."""
    return json_response({"status": "ok"})
