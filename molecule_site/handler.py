"""Django's ASGI handler without a thread per request for the async views.

Django enters a ``ThreadSensitiveContext`` for every request so that a sync view's work stays in
one thread of its own; leaving it joins and discards that thread. For a request to an async
view the only sync work left is ``response.close()`` after the answer went out, yet creating
and joining that thread was a quarter of a heartbeat's CPU time (py-spy, docs/performance.md).
Requests routed to async views skip the context, so that one call runs on the process's shared
sync thread; sync views keep a thread each, exactly as in Django.

It also enforces a view's ``max_body_bytes``: Django reads the whole body (spilling to a temporary
file) before any view runs, so a route taking large uploads is protected here — a longer
``Content-Length`` is a 413 before a byte is read, and a chunked body is cut off at the limit.
"""

from __future__ import annotations

from functools import lru_cache

from asgiref.sync import iscoroutinefunction
from django.core.handlers.asgi import ASGIHandler
from django.urls import Resolver404, get_resolver

from molecule_site.wire import JSON_CONTENT_TYPE, json_bytes

ROUTE_CACHE_SIZE = 4096


@lru_cache(maxsize=ROUTE_CACHE_SIZE)
def routes_to_async_view(path: str) -> bool:
    try:
        return iscoroutinefunction(get_resolver().resolve(path).func)
    except Resolver404:
        return False


@lru_cache(maxsize=ROUTE_CACHE_SIZE)
def route_body_limit(path: str) -> int | None:
    """The ``max_body_bytes`` the view of ``path`` declares, if any."""
    try:
        view = get_resolver().resolve(path).func
    except Resolver404:
        return None
    return getattr(getattr(view, "view_class", None), "max_body_bytes", None)


class BodyTooLarge(Exception):
    pass


def _declared_length(scope) -> int:
    for name, value in scope.get("headers", []):
        if name == b"content-length" and value.isdigit():
            return int(value)
    return 0


def _capped(receive, limit: int):
    received = 0

    async def capped_receive():
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise BodyTooLarge
        return message

    return capped_receive


async def _refuse_body(send, limit: int) -> None:
    body = json_bytes({"error": "request body too large", "max_bytes": limit})
    headers = [(b"content-type", JSON_CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class MoleculeASGIHandler(ASGIHandler):
    async def __call__(self, scope, receive, send):
        limit = route_body_limit(scope["path"]) if scope["type"] == "http" else None
        if limit is None:
            await self._dispatch(scope, receive, send)
            return
        if _declared_length(scope) > limit:
            await _refuse_body(send, limit)
            return
        try:
            await self._dispatch(scope, _capped(receive, limit), send)
        except BodyTooLarge:
            await _refuse_body(send, limit)

    async def _dispatch(self, scope, receive, send):
        if scope["type"] == "http" and routes_to_async_view(scope["path"]):
            await self.handle(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
