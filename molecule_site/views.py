"""Platform-level endpoints that belong to no app: health (spec §17)."""

from molecule_site.api import async_api


@async_api("GET")
async def health(request):
    """Liveness probe for load balancers: no dependency checks, as in the original."""
    return {"status": "ok"}
