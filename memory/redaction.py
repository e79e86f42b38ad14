"""Secret redaction applied to memory content before it is stored (spec §11.1).

Each credential shape is replaced whole by ``[REDACTED:<LABEL>]``. Where this goes beyond the
spec's wording it only redacts *more* (a missed credential is the worse failure), except for
one documented exemption:

- ``<NAME>_API_KEY`` / ``_TOKEN`` / ``_SECRET`` assignments: names are case-insensitive; the
  separator may be ``=`` or ``:`` (YAML, JSON: ``"OPENAI_API_KEY": "…"``) with spaces around
  it; the keyword alone counts with ``=`` only (``API_KEY=…``, ``token=…``), so prose such as
  "the token: it expires" is left alone. A quoted value is redacted up to its closing quote,
  so ``KEY="a b"`` does not leak ``b"``, and ``KEY: Bearer x`` takes ``x`` too. SECRET also
  covers names that continue after it (``AWS_SECRET_ACCESS_KEY``, ``DJANGO_SECRET_KEY``).
- Base64-ish runs use both alphabets (``+/`` and ``-_``): the platform's own workspace tokens are
  43-character base64url strings, which a standard-alphabet pattern would split at ``-``/``_``
  and let through. The run's characters include ``-``, so a canonical UUID (36 characters)
  would match; UUIDs are the ids this platform hands out everywhere (workspaces, memories,
  tasks) and agents write them into memories all the time, so a run made only of UUIDs and
  short (< 33 character) separators between them is left alone.
"""

from __future__ import annotations

import re

# An identifier followed by ``=``/``:``; :func:`_assignment_label` decides whether the name is a
# credential's, and only then is the value after it consumed (so ``url: https://h/?token=x``
# still reaches ``token=x``). The identifier is matched possessively: a long run such as
# ``_SECRET_SECRET…`` cannot make the engine backtrack quadratically.
_NAME = re.compile(r"""\b([A-Za-z0-9_]++)["']?[ \t]*([=:])[ \t]*""")
_VALUE = re.compile(r""""[^"\n]*"?|'[^'\n]*'?|(?:Bearer[ \t]+)?\S+""")

_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
BASE64_MIN_RUN = 33
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{%d,}={0,2}" % BASE64_MIN_RUN)

# After the assignments (whose values may look like anything): the specific token shapes, then
# the generic base64 run last.
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]+"), "BEARER_TOKEN"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "SK_TOKEN"),
    (re.compile(r"\bctx7_[A-Za-z0-9_-]+"), "CTX7_TOKEN"),
]


def _assignment_label(name: str, separator: str) -> str | None:
    """API_KEY for ``…_API_KEY``, TOKEN for ``…_TOKEN``, SECRET for a name with a ``SECRET(S)`` part.

    The keyword alone (``API_KEY``, ``token``, ``secret``) only counts with ``=``, so prose such
    as "the token: it expires" is left alone; compound names (``GITHUB_TOKEN``, ``SECRET_KEY``)
    count with ``:`` too.
    """
    parts = [part for part in name.upper().split("_") if part]
    if parts[-2:] == ["API", "KEY"]:
        label, keyword_parts = "API_KEY", 2
    elif parts[-1:] == ["TOKEN"]:
        label, keyword_parts = "TOKEN", 1
    elif "SECRET" in parts or "SECRETS" in parts:
        label, keyword_parts = "SECRET", 1
    else:
        return None
    if separator == ":" and len(parts) == keyword_parts:
        return None
    return label


def _redact_assignments(content: str) -> str:
    pieces, kept_from, search_from = [], 0, 0
    while (name := _NAME.search(content, search_from)) is not None:
        label = _assignment_label(name.group(1), name.group(2))
        value = _VALUE.match(content, name.end()) if label else None
        if value is None:
            search_from = name.end()
            continue
        pieces += [content[kept_from:name.start()], f"[REDACTED:{label}]"]
        kept_from = search_from = value.end()
    pieces.append(content[kept_from:])
    return "".join(pieces)


def _redact_base64_run(match: re.Match[str]) -> str:
    run = match.group()
    if _UUID.search(run) and all(len(part) < BASE64_MIN_RUN for part in _UUID.split(run)):
        return run  # ids, not credentials (see the module docstring)
    return "[REDACTED:BASE64_BLOB]"


def redact_secrets(content: str) -> str:
    """Replace anything that looks like a credential with ``[REDACTED:<LABEL>]``."""
    content = _redact_assignments(content)
    for pattern, label in _PATTERNS:
        content = pattern.sub(f"[REDACTED:{label}]", content)
    return _BASE64_RUN.sub(_redact_base64_run, content)
