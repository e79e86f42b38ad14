"""The Docker engine as the platform's processes reach it: a bounded client and the workspace network.

A site helper (no Django settings, no models): the launcher uses it before Django is set up, to
listen on the workspace network's gateway, and the Docker provisioner backend
(:mod:`workspaces.provisioners.docker`) uses it for everything else. The engine is the SDK's
usual one: ``DOCKER_HOST`` when set, else the local socket.
"""

from __future__ import annotations

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions

MANAGED_LABEL = "molecule.platform.managed"
# What the SDK raises when the engine cannot be reached or refuses a call (urllib3's own errors
# escape from streamed bodies: archives, build logs).
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, urllib3.exceptions.HTTPError)


class EngineUnavailable(RuntimeError):
    """No Docker engine answers (no socket, daemon down, DOCKER_HOST unreachable)."""


def connect(timeout: float) -> docker.DockerClient:
    """A client whose every call gives up after ``timeout`` seconds; raises EngineUnavailable.

    The API version is negotiated with the engine (the SDK's default is newer than some engines
    still in use), and the client's proxy configuration is never injected into containers.
    """
    try:
        client = docker.DockerClient.from_env(timeout=timeout)
        client.api.ping()
    except ENGINE_ERRORS as exc:
        raise EngineUnavailable(f"Docker engine not reachable: {exc}") from None
    return client


def answers(timeout: float = 3.0) -> bool:
    """Whether a Docker engine answers within ``timeout`` seconds."""
    try:
        client = connect(timeout)
    except EngineUnavailable:
        return False
    client.close()
    return True


def ensure_network(client: docker.DockerClient, name: str) -> str:
    """The gateway address of bridge network ``name``, created (labelled managed) when missing.

    Containers reach the platform's host through this address (``host.docker.internal``), so the
    launcher listens on it and the backend writes it into each container's ``/etc/hosts``.
    """
    api = client.api
    try:
        attrs = api.inspect_network(name)
    except docker.errors.NotFound:
        try:
            api.create_network(name, driver="bridge", labels={MANAGED_LABEL: "true"}, check_duplicate=True)
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # another process created it meanwhile
                raise
        attrs = api.inspect_network(name)
    for config in (attrs.get("IPAM") or {}).get("Config") or []:
        gateway = config.get("Gateway")
        if gateway and ":" not in gateway:
            return gateway
    raise RuntimeError(f"Docker network {name} has no IPv4 gateway")
