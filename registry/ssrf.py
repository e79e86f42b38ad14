"""Which agent URLs the platform will store or call (spec §7.1 register, §8.3 discover, §8.4 step 7).

One checker, parameterised by a :class:`_Policy`: what is always refused (link-local and cloud
metadata, TEST-NETs, CGNAT, multicast, unspecified, fc00::/8, documentation v6), what a policy
may allow (loopback; RFC-1918 and fd00::/8), and which host names pass by name without being
resolved. Host names are resolved with the system resolver and EVERY address must pass, so a name
cannot smuggle in a private address next to a public one. IPv4-mapped IPv6 (``::ffff:127.0.0.1``)
is judged as the IPv4 address it carries. Anything unparseable or unresolvable is refused, and so
is any URL containing whitespace, control characters or a backslash (HTTP clients disagree on
how to split those, which is how filters like this one get bypassed).

Settings are read at call time (``SAAS_MODE``, ``A2A_ALLOW_PRIVATE_TARGETS``), so tests and
operators can flip them without re-importing.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = frozenset({"http", "https"})
LOCALHOST = "localhost"
DOCKER_HOST_NAME = "host.docker.internal"


def _networks(*cidrs: str) -> tuple:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


# Refused by every policy. ``::`` and ff00::/8 are the IPv6 twins of 0.0.0.0/8 and 224/4; the
# register list of the original names only the IPv4 ones, refusing them too is strictly safer.
ALWAYS_BLOCKED = _networks(
    "0.0.0.0/8",        # unspecified / "this network"
    "169.254.0.0/16",   # link-local, cloud metadata (169.254.169.254)
    "192.0.2.0/24",     # TEST-NET-1
    "198.51.100.0/24",  # TEST-NET-2
    "203.0.113.0/24",   # TEST-NET-3
    "100.64.0.0/10",    # CGNAT
    "224.0.0.0/4",      # multicast
    "::/128",           # unspecified
    "fe80::/10",        # link-local
    "ff00::/8",         # multicast
    "fc00::/8",         # ULA, the half no deployment mode allows
    "2001:db8::/32",    # documentation
)
LOOPBACK = _networks("127.0.0.0/8", "::1/128")
PRIVATE = _networks("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8")


@dataclass(frozen=True)
class _Policy:
    allow_loopback: bool
    allow_private: bool
    names_allowed: frozenset[str] = frozenset()


def register_url_problem(url: str) -> str | None:
    """Why ``POST /registry/register`` may not store ``url`` (spec §7.1), or None when it may.

    ``localhost`` is accepted by name (local-process workspaces register with it); loopback IP
    literals only in dev mode — beyond the spec, which keeps them refused there too, but the
    runtime's documented default ``AGENT_URL`` is ``http://127.0.0.1:<port>``, and dev mode's
    proxy calls loopback anyway. Private ranges only in SaaS mode.
    """
    return _url_problem(url, _register_policy(frozenset({LOCALHOST}), allow_loopback=bool(settings.DEV_MODE)))


def register_url_allowed(url: str) -> bool:
    return register_url_problem(url) is None


def discover_url_allowed(url: str) -> bool:
    """The register rules, plus ``host.docker.internal`` by name (spec §8.3).

    Discovery rewrites an external agent's ``localhost``/``127.0.0.1`` URL to
    ``host.docker.internal`` for callers inside Docker; that name usually does not resolve where
    the platform runs, and where it does it is a private bridge address, so it passes by name.
    """
    return _url_problem(url, _register_policy(frozenset({LOCALHOST, DOCKER_HOST_NAME}))) is None


def a2a_target_problem(url: str) -> str | None:
    """Why the A2A proxy may not forward to ``url`` (spec §8.4 step 7), or None when it may.

    Loopback (including the name ``localhost``, which is resolved like any name) only with
    ``A2A_ALLOW_PRIVATE_TARGETS``; RFC-1918 and fd00::/8 with that or in SaaS mode.
    """
    relaxed = bool(settings.A2A_ALLOW_PRIVATE_TARGETS)
    policy = _Policy(allow_loopback=relaxed, allow_private=relaxed or bool(settings.SAAS_MODE))
    return _url_problem(url, policy)


def a2a_target_allowed(url: str) -> bool:
    return a2a_target_problem(url) is None


def _register_policy(names: frozenset[str], *, allow_loopback: bool = False) -> _Policy:
    return _Policy(allow_loopback=allow_loopback, allow_private=bool(settings.SAAS_MODE), names_allowed=names)


def _url_problem(url: str, policy: _Policy) -> str | None:
    if not isinstance(url, str) or any(char.isspace() or not char.isprintable() or char == "\\" for char in url):
        # no room for parser differentials: clients may split such URLs differently
        return "url must not contain whitespace, control characters or backslashes"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "url is malformed"
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        return "url must start with http:// or https://"
    if not host:
        return "url has no host"
    if host in policy.names_allowed:
        return None
    literal = _parse_ip(host)
    addresses = [literal] if literal is not None else _resolve(host)
    if not addresses:
        return f"url host {host} does not resolve"
    for address in addresses:
        problem = _address_problem(address, policy)
        if problem:
            carried = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
            named = str(carried or address)  # ::ffff:7f00:1 is judged, and named, as 127.0.0.1
            shown = named if literal is not None else f"{host} resolves to {named}, which"
            return f"url must be publicly routable: {shown} is {problem}"
    return None


def _address_problem(address: IPAddress, policy: _Policy) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if _in(address, ALWAYS_BLOCKED):
        return "link-local, reserved or documentation-only"
    if _in(address, LOOPBACK):
        return None if policy.allow_loopback else "loopback"
    if _in(address, PRIVATE):
        return None if policy.allow_private else "a private address (allowed in SaaS mode)"
    return None


def _in(address: IPAddress, networks) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _resolve(host: str) -> list[IPAddress]:
    """Every address the system resolver gives for ``host``; [] when it fails (→ refused)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError, ValueError):
        return []
    addresses = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        parsed = _parse_ip(str(sockaddr[0]))
        if parsed is None:
            return []  # an address we cannot judge poisons the whole answer
        addresses.append(parsed)
    return addresses
