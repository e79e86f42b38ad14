"""Platform-level endpoints that belong to no app: health and metrics (spec §17)."""

from django_prometheus.exports import ExportToDjangoView

from molecule_site.api import async_api
from molecule_site.metrics import workspace_metrics_text
from molecule_site.wire import not_found_response


def get_only(view):
    """Serve GET (and HEAD, as Django does) only; any other method is gin's 404."""
    def run(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            return not_found_response()
        return view(request, *args, **kwargs)
    run.__doc__ = view.__doc__
    return run


@async_api("GET")
async def health(request):
    """Liveness probe for load balancers: no dependency checks, as in the original."""
    return {"status": "ok"}


@get_only
def metrics(request):
    """``GET /metrics`` (open, spec §17) in the Prometheus text format; other methods: gin's 404."""
    response = ExportToDjangoView(request)
    response.content = response.content + workspace_metrics_text()  # fleet gauges, read from the DB per scrape
    return response
