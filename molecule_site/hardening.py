"""What the platform's processes let the processes around them see.

Two rules, for the processes the platform starts and for its own:

- **Children get an allow-listed environment** (:func:`host_environment`). The platform's own
  variables — ``DATABASE_URL``/``REDIS_URL`` and their passwords, ``ADMIN_TOKEN``,
  ``SECRETS_ENCRYPTION_KEY``, ``DJANGO_SECRET_KEY``, whatever else an operator exported — never
  reach the embedded servers or the agent runtimes: each starts with a short list of host
  variables (search path, locale, time zone…) plus what it is explicitly given.
- **The platform's processes are not dumpable** (:func:`make_undumpable`): the kernel then
  refuses ``/proc/<pid>/environ`` and ``/proc/<pid>/mem``, ptrace and core dumps to every process
  without ``CAP_SYS_PTRACE``, the platform's own user included — so a local runtime running as
  that user cannot read the keys out of a web or worker process. The flag is reset by
  ``execve``: what the platform starts (runtimes, embedded servers) is dumpable again, which
  keeps their environments readable to the platform (the local backend checks a runtime's
  ``WORKSPACE_ID`` there). A process's ``stat``, ``cmdline`` and its own ``/proc/self/fd`` stay
  readable, so psutil's CPU, memory and fd figures and the Prometheus process collector work.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

# Host variables any child may inherit: finding programs, locale, time zone, a temp directory.
BASE_HOST_ENV = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
)
# What a child that makes outgoing HTTPS calls also needs: CA bundles and proxies.
NETWORK_HOST_ENV = (
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
)

PR_SET_DUMPABLE = 4  # <linux/prctl.h>


def host_environment(names: tuple[str, ...] = BASE_HOST_ENV) -> dict[str, str]:
    """The variables of ``names`` this process has: the base of a child's environment."""
    return {name: os.environ[name] for name in names if name in os.environ}


def make_undumpable() -> bool:
    """Mark this process not dumpable (``prctl(PR_SET_DUMPABLE, 0)``); True when it took.

    For the entry points of the platform's long-lived processes (launcher, web, worker, beat),
    called before they read any secret. Not Linux: nothing to do, False.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        log.warning("could not make process %d undumpable: %s", os.getpid(), os.strerror(ctypes.get_errno()))
        return False
    return True
