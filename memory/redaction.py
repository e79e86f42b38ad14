"""Secret redaction applied before agent-written text is stored: memories (spec §11.1), key/value
memory values (§11.2), notify messages and activity summaries (§10).

runtime/molecule_runtime/tools/redact.py is the runtime's copy of :func:`redact_secrets` (the
runtime is a separate, dependency-free package, so the patterns are copied, not imported): change
both together; memory/tests/test_redaction.py checks that they agree. The runtime redacts before
a memory leaves it; the platform redacts again here.

Each credential shape is replaced whole by ``[REDACTED:<LABEL>]``. Where this goes beyond the
spec's wording it only redacts *more* (a missed credential is the worse failure), except for
the documented exemptions (UUIDs, the bare keyword before prose, the shell's ``PWD``):

- ``<NAME>_API_KEY`` / ``_TOKEN`` / ``_SECRET`` / ``_PASSWORD`` assignments: names are
  case-insensitive and may be spelled with ``-`` (``x-api-key: …`` headers, ``--password=…``);
  the separator may be ``=`` or ``:`` (YAML, JSON: ``"OPENAI_API_KEY": "…"``) with spaces around
  it. SECRET covers names with a ``SECRET(S)`` part anywhere (``AWS_SECRET_ACCESS_KEY``,
  ``DJANGO_SECRET_KEY``); PASSWORD names ending in ``PASSWORD``, ``PASSWD``, ``PWD`` or
  ``PASSPHRASE``; API_KEY also ``APIKEY``; PRIVATE_KEY names ending in ``PRIVATE_KEY``. A quoted
  value is redacted up to its closing quote, so ``KEY="a b"`` does not leak ``b"``, and
  ``KEY: Bearer x`` / ``KEY: Basic x`` take ``x`` too.
- The keyword alone (``API_KEY``, ``token``, ``password``…) always counts with ``=``; with ``:``
  only when what follows looks like a value rather than prose: quoted, not made of letters only
  (``password: hunter2``), or the last word on its line (``wifi password: bluebird``). So
  "reset your password: see the docs" and "the token: it expires" are left alone.
- ``PWD=/some/dir`` is the shell's working directory (env dumps are full of it), not a password.
- URLs with a password in their userinfo (``scheme://user:pass@host``, any scheme: postgres,
  mysql, redis, amqp, mongodb+srv, https…): the whole userinfo is replaced and the scheme, host,
  port and path stay, so the memory still says which server it was about
  (``postgres://[REDACTED:URL_CREDENTIALS]@db:5432/x``). The user name goes too: it is often
  the other half of the credential (an access key id, a token used as user name). A userinfo
  without ``:`` (``ssh://git@host``) is a user name, not a credential, and stays.
- HTTP Basic credentials: after an ``Authorization`` header name, whatever follows ``Basic``;
  without the header name, ``Basic <base64>`` only when it decodes to ``user:password`` (so
  "Basic usage" is prose).
- PEM private-key blocks (``-----BEGIN … PRIVATE KEY-----`` to the matching ``-----END …-----``)
  go as one; a block cut off before its END line is still a key and is redacted to the end.
- Fixed-prefix tokens: AWS access key ids (``AKIA``/``ASIA``), Stripe secret and restricted keys
  and webhook secrets, GitHub (``ghp_``… and ``github_pat_``), Slack (``xox…-`` and webhook
  paths), Google API keys (``AIza``), JWTs (``eyJ….eyJ….…``), ``sk-``, ``ctx7_``.
- Base64-ish runs use both alphabets (``+/`` and ``-_``): the platform's own workspace tokens are
  43-character base64url strings, which a standard-alphabet pattern would split at ``-``/``_``
  and let through. The run's characters include ``-``, so a canonical UUID (36 characters)
  would match; UUIDs are the ids this platform hands out everywhere (workspaces, memories,
  tasks) and agents write them into memories all the time, so a run made only of UUIDs and
  short (< 33 character) separators between them is left alone. So is a run of words (lowercase,
  ``Capitalised`` or ``CamelCase`` letters with optional trailing digits, or numbers) joined by
  ``/``, ``_`` or ``-``: file paths (``/usr/lib/python3/site-packages/…``) and long snake_case or
  kebab-case names. Random credentials mix case and digits inside their pieces, so the chance
  that one passes for words is negligible (about 1e-10 for a 40-character base64 key), while
  hex keys fail it at their first digit-letter mix.

Every pattern is linear in the length of the text: runs are matched possessively or with
bounded repetition, so hostile input cannot make the engine backtrack quadratically.
"""

from __future__ import annotations

import base64
import binascii
import re

# An identifier followed by ``=``/``:``; :func:`_credential_label` decides whether the name is a
# credential's, and only then is the value after it consumed (so ``url: https://h/?token=x`` still
# reaches ``token=x``). The identifier is matched possessively and only from the start of a run of
# identifier characters (not from every word boundary, which ``-`` puts inside ``a-b-c``), so a
# long run such as ``_SECRET_SECRET…`` or ``a-a-a…`` is scanned once, not once per position.
# Quotes, backticks and Markdown bold may close the name or the separator (``"password": …``,
# ``**Password:** …``), or the value would be the ``**`` and the secret after it would stay.
_NAME = re.compile(r"""(?<![A-Za-z0-9_-])([A-Za-z0-9_-]++)(?:\*\*)?["'`]?[ \t]*([=:])(?:\*\*)?[ \t]*""")
_VALUE = re.compile(r""""[^"\n]*"?|'[^'\n]*'?|(?:(?:Bearer|Basic)[ \t]+)?\S+""")
_REST_OF_LINE_BLANK = re.compile(r"[ \t]*(?:\r?\n|\Z)")
_TRAILING_PUNCTUATION = ".,;!?)]}"
_NAME_PART_SEPARATOR = re.compile(r"[-_]+")
_PATH_START = re.compile(r"""["']?[/~]""")

_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:.*?-----END [A-Z0-9 ]{0,40}-----|.*+)", re.DOTALL
)
# Group 1: an ``Authorization`` header name, when the credentials follow one.
_BASIC_AUTH = re.compile(
    r"""(\b(?i:proxy-)?(?i:authorization)["']?[ \t]*[:=][ \t]*["']?)?\b(?i:basic)[ \t]+([A-Za-z0-9+/_-]++=*)"""
)
# The scheme is bounded (real ones are short) so that a long run of scheme characters is not
# rescanned from every word boundary inside it. The userinfo may contain ``@`` (an unencoded one
# in a password), so it runs to the last ``@`` before the path.
_URL_CREDENTIALS = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]{0,30}://)[^\s/?#@:]*+:[^\s/?#]*@")

_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
BASE64_MIN_RUN = 33
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{%d,}={0,2}" % BASE64_MIN_RUN)
# A word: lowercase letters, each capital followed by lowercase ones (``MyApp``), then digits
# (``python3``); or a number. All possessive, so a failing match cannot backtrack.
_WORD = r"(?:(?:[A-Z]?+[a-z]++)++[0-9]*+|[0-9]++)"
_WORDS = re.compile(rf"[/_-]*+{_WORD}(?:[/_-]++{_WORD})++[/_-]*+")

# After the assignments (whose values may look like anything): the specific token shapes, then
# the generic base64 run last. Bearer comes before JWT so a bearer JWT is one BEARER_TOKEN.
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]+"), "[REDACTED:BEARER_TOKEN]"),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), "[REDACTED:AWS_ACCESS_KEY]"),
    (re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]{16,}+"), "[REDACTED:STRIPE_KEY]"),
    (re.compile(r"\bwhsec_[A-Za-z0-9]{16,}+"), "[REDACTED:STRIPE_KEY]"),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}+|github_pat_[A-Za-z0-9_]{20,}+)"), "[REDACTED:GITHUB_TOKEN]"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}+"), "[REDACTED:SLACK_TOKEN]"),
    (re.compile(r"(\bhooks\.slack\.com/services/)[A-Za-z0-9/]++"), r"\1[REDACTED:SLACK_WEBHOOK]"),
    (re.compile(r"\bAIza[A-Za-z0-9_-]{30,}+"), "[REDACTED:GOOGLE_API_KEY]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]++\.eyJ[A-Za-z0-9_-]++\.[A-Za-z0-9_-]*+"), "[REDACTED:JWT]"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "[REDACTED:SK_TOKEN]"),
    (re.compile(r"\bctx7_[A-Za-z0-9_-]+"), "[REDACTED:CTX7_TOKEN]"),
]


def _credential_label(name: str, text: str, value_at: int) -> tuple[str, bool] | None:
    """``(label, bare)`` when ``name`` holds a credential; ``bare``: the name is the keyword alone.

    API_KEY for ``…_API_KEY``/``…APIKEY``, TOKEN for ``…_TOKEN``, PASSWORD for ``…_PASSWORD`` and
    its spellings, PRIVATE_KEY for ``…_PRIVATE_KEY``, SECRET for a name with a ``SECRET(S)`` part.
    ``PWD`` before a path (``text`` at ``value_at``) is the shell's working directory, not a
    password; only the value's first character is looked at, so this stays cheap on any value.
    """
    parts = [part for part in _NAME_PART_SEPARATOR.split(name.upper()) if part]
    if parts[-2:] == ["API", "KEY"]:
        label, keyword_parts = "API_KEY", 2
    elif parts[-1:] == ["APIKEY"]:
        label, keyword_parts = "API_KEY", 1
    elif parts[-1:] == ["TOKEN"]:
        label, keyword_parts = "TOKEN", 1
    elif parts[-1:] and parts[-1] in ("PASSWORD", "PASSWD", "PWD", "PASSPHRASE"):
        label, keyword_parts = "PASSWORD", 1
    elif parts[-2:] == ["PRIVATE", "KEY"]:
        label, keyword_parts = "PRIVATE_KEY", 2
    elif "SECRET" in parts or "SECRETS" in parts:
        label, keyword_parts = "SECRET", 1
    else:
        return None
    if parts == ["PWD"] and _PATH_START.match(text, value_at):
        return None
    return label, len(parts) == keyword_parts


def _looks_like_a_value(value: re.Match[str]) -> bool:
    """After ``keyword:``: quoted, not letters only, or the last word on its line — not prose."""
    text = value.group()
    if text[0] in "\"'":
        return True
    word = text.rstrip(_TRAILING_PUNCTUATION)
    return not word.isalpha() or _REST_OF_LINE_BLANK.match(value.string, value.end()) is not None


def _redact_assignments(content: str) -> str:
    pieces, kept_from, search_from = [], 0, 0
    while (name := _NAME.search(content, search_from)) is not None:
        # The label first: matching a value after every name would rescan the rest of the text.
        credential = _credential_label(name.group(1), content, name.end())
        value = _VALUE.match(content, name.end()) if credential else None
        if value is None or (credential[1] and name.group(2) == ":" and not _looks_like_a_value(value)):
            search_from = name.end()
            continue
        pieces += [content[kept_from:name.start()], f"[REDACTED:{credential[0]}]"]
        kept_from = search_from = value.end()
    pieces.append(content[kept_from:])
    return "".join(pieces)


def _decodes_to_user_and_password(credentials: str) -> bool:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    return ":" in decoded and decoded.isprintable()


def _redact_basic_auth(match: re.Match[str]) -> str:
    header, credentials = match.group(1), match.group(2)
    if header is None and not _decodes_to_user_and_password(credentials):
        return match.group()  # "Basic usage": prose
    return f"{header or ''}[REDACTED:BASIC_AUTH]"


def _redact_base64_run(match: re.Match[str]) -> str:
    run = match.group()
    if all(len(part) < BASE64_MIN_RUN or _WORDS.fullmatch(part) for part in _UUID.split(run)):
        return run  # ids, paths and names, not credentials (see the module docstring)
    return "[REDACTED:BASE64_BLOB]"


def redact_secrets(content: str) -> str:
    """Replace anything that looks like a credential with ``[REDACTED:<LABEL>]``."""
    content = _PRIVATE_KEY_BLOCK.sub("[REDACTED:PRIVATE_KEY]", content)  # first: one label per block
    content = _redact_assignments(content)
    content = _BASIC_AUTH.sub(_redact_basic_auth, content)
    content = _URL_CREDENTIALS.sub(r"\1[REDACTED:URL_CREDENTIALS]@", content)
    for pattern, replacement in _PATTERNS:
        content = pattern.sub(replacement, content)
    return _BASE64_RUN.sub(_redact_base64_run, content)


_JSON_MEMBER_NAME = re.compile(r"[A-Za-z0-9_-]+")


def redact_json_secrets(value):
    """``value`` (any JSON) with :func:`redact_secrets` applied to every string in it.

    Object member names are redacted too (a pasted token or DSN can be a name). A string whose
    member name holds a credential (``{"password": "hunter2"}``) is replaced whole, since the
    name/value pair is an assignment that the text patterns cannot see across JSON structure.
    Numbers, booleans and null stay as they are: a client reading the value back keeps its types.
    """
    if isinstance(value, str):
        return redact_secrets(value)
    if isinstance(value, list):
        return [redact_json_secrets(item) for item in value]
    if isinstance(value, dict):
        return {redact_secrets(name): _redact_json_member(name, member) for name, member in value.items()}
    return value


def _redact_json_member(name: str, value):
    if isinstance(value, str) and value and _JSON_MEMBER_NAME.fullmatch(name):
        credential = _credential_label(name, value, 0)
        if credential:
            return f"[REDACTED:{credential[0]}]"
    return redact_json_secrets(value)
