"""Secret redaction applied to memory content before it is stored (spec §11.1)."""

from __future__ import annotations

import re

# Order matters: specific shapes first, the generic base64 run last.
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b[A-Za-z0-9_]*_API_KEY=\S+"), "API_KEY"),
    (re.compile(r"\b[A-Za-z0-9_]*_TOKEN=\S+"), "TOKEN"),
    (re.compile(r"\b[A-Za-z0-9_]*_SECRET=\S+"), "SECRET"),
    (re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]+"), "BEARER_TOKEN"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "SK_TOKEN"),
    (re.compile(r"\bctx7_[A-Za-z0-9_-]+"), "CTX7_TOKEN"),
    (re.compile(r"[A-Za-z0-9+/_-]{33,}={0,2}"), "BASE64_BLOB"),
]


def redact_secrets(content: str) -> str:
    """Replace anything that looks like a credential with ``[REDACTED:<LABEL>]``."""
    for pattern, label in _PATTERNS:
        content = pattern.sub(f"[REDACTED:{label}]", content)
    return content
