"""Third-party middleware made to run on the event loop, without a thread hop per hook.

Django adapts a ``MiddlewareMixin`` middleware to the async handler by running each of its
hooks (``process_request``, ``process_view``, ``process_response``…) in ``sync_to_async``: five
middlewares cost about ten thread round trips per request, the main cost of a heartbeat. The
hooks of the middlewares below do no I/O (they read headers and cookies, set lazy attributes,
count metrics), so :class:`InlineHooks` calls them directly on the loop. Where a hook *can* do
I/O — saving a modified session, storing flashed messages, serving a static file — the subclass
says when, and only then does that hook go to a thread. Under a sync handler (the test client,
management commands) nothing changes.
"""

from __future__ import annotations

import types

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware
from django.middleware import common, csrf, security
from whitenoise import middleware as whitenoise_middleware

VIEW_HOOKS = ("process_view", "process_template_response")  # Django adapts these one by one


class InlineHooks:
    """Mixin for a ``MiddlewareMixin`` subclass whose hooks are safe to run on the event loop."""

    def __init__(self, get_response):
        super().__init__(get_response)
        if iscoroutinefunction(self):
            for name in VIEW_HOOKS:
                hook = getattr(self, name, None)
                if hook is not None and not iscoroutinefunction(hook):
                    setattr(self, name, types.MethodType(_inline_coroutine(hook), self))

    def response_needs_thread(self, request, response) -> bool:
        """Whether ``process_response`` may touch the database or the disk for this request."""
        return False

    async def __acall__(self, request):
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            if self.response_needs_thread(request, response):
                response = await sync_to_async(self.process_response, thread_sensitive=True)(request, response)
            else:
                response = self.process_response(request, response)
        return response


def _inline_coroutine(hook):
    """``hook`` as a coroutine method (Django names the middleware through ``__self__``)."""

    async def run(owner, *args, **kwargs):
        return hook(*args, **kwargs)

    return run


class SecurityMiddleware(InlineHooks, security.SecurityMiddleware):
    pass


class CommonMiddleware(InlineHooks, common.CommonMiddleware):
    pass


class CsrfViewMiddleware(InlineHooks, csrf.CsrfViewMiddleware):
    pass


class SessionMiddleware(InlineHooks, sessions_middleware.SessionMiddleware):
    """The session row is written only when the session changed (or on every request if asked)."""

    def response_needs_thread(self, request, response) -> bool:
        session = getattr(request, "session", None)
        return session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)


class AuthenticationMiddleware(InlineHooks, auth_middleware.AuthenticationMiddleware):
    """``request.user`` stays lazy: sync views load it in their thread, async ones ``await request.auser()``."""


class MessageMiddleware(InlineHooks, messages_middleware.MessageMiddleware):
    """Messages are stored (cookie + session) only when some were read or added."""

    def response_needs_thread(self, request, response) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class WhiteNoiseMiddleware(whitenoise_middleware.WhiteNoiseMiddleware):
    """WhiteNoise with an async path: the lookup is a dict read; only serving a file uses a thread."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None):
        super().__init__(get_response)
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request):
        static_file = self.find_file(request.path_info) if self.autorefresh else self.files.get(request.path_info)
        if static_file is None:
            return await self.get_response(request)
        return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
