"""Secret environment variables, and their removal from ``/proc/<pid>/environ`` (beyond the original).

The kernel serves ``/proc/<pid>/environ`` from the environment block the process was started
with (the bytes between ``env_start`` and ``env_end`` of its memory map), whatever
``os.environ`` or ``setenv()`` do later. Popping a variable from ``os.environ`` therefore hides
nothing from code that reads that file: skill code in this process, or any process of the same
user. ``wipe_initial_environ`` erases the secret values from that block while keeping them where
the runtime reads them: ``os.environ`` (Python's own copy, made at interpreter start) and libc's
``environ`` (re-pointed at heap copies, which is what child processes inherit).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

# Hidden from skill code while it is imported (spec §6.2 lists the first six; the platform token
# and the inbound secret are ours) and erased from the initial environment block at start.
SECRET_ENV_VARS = (
    "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "WORKSPACE_AUTH_TOKEN", "GITHUB_TOKEN",
    "GH_TOKEN", "MOLECULE_AUTH_TOKEN", "MOLECULE_INBOUND_SECRET",
    # the other providers' keys of the provider map (spec §3.3) and the hermes / google-adk runtimes
    "OPENROUTER_API_KEY", "GROQ_API_KEY", "CEREBRAS_API_KEY", "QIANFAN_API_KEY", "AISTUDIO_API_KEY",
    "GOOGLE_API_KEY", "GEMINI_API_KEY", "NOUS_API_KEY", "LITELLM_API_KEY",
    # the trace exporters' credentials (telemetry.py reads them once, at boot)
    "LANGFUSE_SECRET_KEY", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
)

# /proc/<pid>/stat fields env_start and env_end (50 and 51, Linux >= 3.5), counted from the
# field after the parenthesised command name (field 3)
_ENV_START_INDEX = 50 - 3


def _initial_environ_bounds() -> tuple[int, int] | None:
    try:
        stat = Path("/proc/self/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces and ')'
    try:
        return int(fields[_ENV_START_INDEX]), int(fields[_ENV_START_INDEX + 1])
    except (IndexError, ValueError):
        return None


def _libc_environ() -> list[int]:
    """Addresses of the ``NAME=value`` strings libc's ``environ`` points at."""
    environ = ctypes.POINTER(ctypes.c_void_p).in_dll(ctypes.CDLL(None), "environ")
    addresses = []
    while environ[len(addresses)]:
        addresses.append(environ[len(addresses)])
    return addresses


# What a wiped value's bytes become. Not NUL: readers of /proc/<pid>/environ (psutil, the
# platform's check that a pid is still the runtime it started) stop at the first empty entry, so
# NULs would hide every variable after the secret.
FILLER = b"*"


def wipe_initial_environ(names: tuple[str, ...] = SECRET_ENV_VARS) -> list[str]:
    """Overwrite the values of ``names`` in the initial environment block; returns the names wiped.

    Each variable still set is first set again through ``os.environ`` (``setenv``), so libc's
    ``environ`` points at a fresh heap copy; then the value bytes of every ``NAME=value`` entry
    of the initial block are overwritten in place with ``FILLER``, unless libc still points at
    that entry. Not Linux, or no ``/proc``: nothing to do (there is no such file to read).
    """
    if not sys.platform.startswith("linux"):
        return []
    bounds = _initial_environ_bounds()
    if bounds is None:
        return []
    start, end = bounds
    for name in names:
        if name in os.environ:
            os.environ[name] = os.environ[name]
    in_use = set(_libc_environ())
    wanted = {name.encode() for name in names}
    wiped = []
    offset = 0
    for entry in ctypes.string_at(start, end - start).split(b"\0"):
        name, sep, value = entry.partition(b"=")
        if sep and value and name in wanted and value.strip(FILLER):
            if start + offset in in_use:  # setenv kept the original string: leave it alone
                log.warning("cannot erase %s from the initial environment block", name.decode())
            else:
                ctypes.memset(start + offset + len(name) + 1, FILLER[0], len(value))
                wiped.append(name.decode())
        offset += len(entry) + 1
    return wiped
