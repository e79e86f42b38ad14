"""Client-side secret redaction applied before a memory leaves the runtime (runtime.md §7.1).

The platform redacts again on its side; this copy keeps obvious credentials from ever being sent.
"""

from __future__ import annotations

import re

_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{20,}"),
    re.compile(r"gh[ps]_[A-Za-z0-9]{36}"),
    re.compile(r"github_pat_[A-Za-z0-9_]{82}"),
    re.compile(r"AKIA[0-9A-Z]{16}"),
]
_KEY_VALUE = re.compile(r"(?i)\b((?:api_key|key|token|secret|password)\s*[=:]\s*)([A-Za-z0-9+/=_\-]{40,})")


def redact_secrets(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub("[REDACTED]", text)
    return _KEY_VALUE.sub(lambda m: m.group(1) + "[REDACTED]", text)
