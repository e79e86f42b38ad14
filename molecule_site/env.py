"""Typed readers for environment variables.

Settings come from the environment only (DESIGN style 7). Each helper returns a typed value or
raises ``EnvError`` naming the variable, so a bad value stops startup with a clear message
instead of surfacing later as an odd runtime failure. Values of secret variables are never
echoed in those messages.
"""

from __future__ import annotations

import json
import os
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured


class EnvError(ImproperlyConfigured):
    """A variable is set to a value its setting cannot use."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _shown(value: str, secret: bool) -> str:
    return "<hidden>" if secret else repr(value)


def env_str(name: str, default: str | None = None) -> str | None:
    """A string; unset or blank gives ``default``."""
    value = _raw(name)
    return default if value is None else value


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer within ``[minimum, maximum]``."""
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise EnvError(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise EnvError(f"{name} must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise EnvError(f"{name} must be at most {maximum}, got {number}")
    return number


def env_bool(name: str, default: bool) -> bool:
    """A boolean written as 1/0, true/false, yes/no or on/off."""
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise EnvError(f"{name} must be a boolean (1/0, true/false, yes/no, on/off), got {value!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list; blank items are dropped."""
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(name: str, default: str | None = None, *, schemes: tuple[str, ...], secret: bool = False) -> str | None:
    """A URL whose scheme is one of ``schemes`` (the value may carry a password: ``secret``)."""
    value = _raw(name)
    if value is None:
        return default
    parsed = urlparse(value)
    if parsed.scheme not in schemes:
        allowed = ", ".join(f"{scheme}://" for scheme in schemes)
        raise EnvError(f"{name} must be a URL starting with one of {allowed}; got {_shown(value, secret)}")
    if not (parsed.netloc or parsed.path or parsed.query):
        raise EnvError(f"{name} is not a complete URL: {_shown(value, secret)}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``, compared case-insensitively and returned lower-cased."""
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered not in choices:
        raise EnvError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return lowered


def env_prices(name: str) -> dict[str, tuple[float, float]]:
    """A JSON object of model → [input, output] prices (non-negative numbers); unset gives ``{}``."""
    value = _raw(name)
    if value is None:
        return {}
    error = EnvError(f'{name} must be a JSON object of model → [input, output] cents per million tokens, '
                     f'e.g. {{"my-model": [30, 60]}}; got {value!r}')
    try:
        parsed = json.loads(value)
    except ValueError:
        raise error from None
    if not isinstance(parsed, dict):
        raise error
    prices = {}
    for model, pair in parsed.items():
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(p, int | float) and not isinstance(p, bool) and p >= 0 for p in pair)):
            raise error
        prices[str(model)] = (float(pair[0]), float(pair[1]))
    return prices
