"""One web process: uvicorn serving ``molecule_site.asgi`` on a listening socket it inherited.

``python -m molecule_site.serve --fd N [--fd M]`` (the launcher starts ``WEB_CONCURRENCY`` of these;
a second socket is the Docker network's gateway when containers run the workspaces).
Not ``uvicorn --fd``: uvicorn rebuilds that socket as ``AF_UNIX`` whatever it is, so asyncio never
sets ``TCP_NODELAY`` on the connections it accepts, and every response (headers and body leave
in two writes) waits ~40 ms for the client's delayed ACK. ``socket.socket(fileno=N)`` reads the
socket's real family. ``--workers`` is never used either: uvicorn would read WEB_CONCURRENCY
and fork that many of its own.
"""

from __future__ import annotations

import argparse
import gc
import socket
import sys

import uvicorn

from molecule_site import hardening

# WebSocket keep-alive: a ping after this many idle seconds, closed if no pong within as many.
WS_PING_SECONDS = 20
GRACEFUL_SHUTDOWN_SECONDS = 10
# An idle HTTP/1.1 connection stays open this long. Clients close theirs first (httpx after 5 s,
# browsers after about a minute): a server that closes at the same moment a client reuses the
# connection makes that request fail with a dropped connection (uvicorn's default is 5 s).
KEEP_ALIVE_SECONDS = 75


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m molecule_site.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--fd", type=int, action="append", required=True,
                        help="inherited listening socket (repeatable: the Docker network's gateway is a second one)")
    args = parser.parse_args(argv)
    hardening.make_undumpable()  # exec resets the launcher's flag: each web process sets its own
    sockets = [socket.socket(fileno=fd) for fd in args.fd]
    from molecule_site.asgi import application  # noqa: PLC0415 - Django is set up here, after argument parsing

    # Everything loaded so far lives as long as the process: keep it out of the collector's way,
    # so full collections only walk what requests allocate (p99 of /health: 52 ms → 6 ms).
    gc.freeze()
    config = uvicorn.Config(
        application,
        log_level="warning",
        access_log=False,
        server_header=False,
        # No trusted proxies (spec §1): the client is the TCP peer, whatever X-Forwarded-For says.
        proxy_headers=False,
        lifespan="off",  # neither Django nor Channels speaks the lifespan protocol
        # Event frames are small and go to many clients: compressing each copy cost more than
        # sending it (a tenth of a fan-out's CPU).
        ws_per_message_deflate=False,
        ws_ping_interval=WS_PING_SECONDS,
        ws_ping_timeout=WS_PING_SECONDS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    uvicorn.Server(config).run(sockets=sockets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
