"""Django's ASGI handler without a thread per request for the async views.

Django enters a ``ThreadSensitiveContext`` for every request so that a sync view's work stays in
one thread of its own; leaving it joins and discards that thread. For a request to an async
view the only sync work left is ``response.close()`` after the answer went out, yet creating
and joining that thread was a quarter of a heartbeat's CPU time (py-spy, docs/performance.md).
Requests routed to async views skip the context, so that one call runs on the process's shared
sync thread; sync views keep a thread each, exactly as in Django.
"""

from __future__ import annotations

from functools import lru_cache

from asgiref.sync import iscoroutinefunction
from django.core.handlers.asgi import ASGIHandler
from django.urls import Resolver404, get_resolver

ROUTE_CACHE_SIZE = 4096


@lru_cache(maxsize=ROUTE_CACHE_SIZE)
def routes_to_async_view(path: str) -> bool:
    try:
        return iscoroutinefunction(get_resolver().resolve(path).func)
    except Resolver404:
        return False


class MoleculeASGIHandler(ASGIHandler):
    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and routes_to_async_view(scope["path"]):
            await self.handle(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
