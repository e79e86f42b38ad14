"""Containers reach the platform: the launcher also listens on the workspace network's gateway."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request

from molecule_site import launcher
from molecule_site.tests.launch import free_port
from workspaces.tests.docker.conftest import TEST_NETWORK


def test_a_container_reaches_the_platform_health_through_the_gateway(engine, workspace_image, monkeypatch):
    monkeypatch.setenv("MOLECULE_PROVISIONER", "docker")
    monkeypatch.setenv("WORKSPACE_NETWORK", TEST_NETWORK)
    gateway = launcher.docker_gateway("127.0.0.1")
    assert gateway == engine.api.inspect_network(TEST_NETWORK)["IPAM"]["Config"][0]["Gateway"]
    port = free_port()
    sockets = launcher.listen_sockets("127.0.0.1", port, gateway)
    assert [sock.getsockname() for sock in sockets] == [("127.0.0.1", port), (gateway, port)]
    fds = [sock.fileno() for sock in sockets]
    web = subprocess.Popen(launcher.web_command("uvicorn", fds), pass_fds=fds, env=os.environ.copy(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for sock in sockets:
            sock.close()  # the web process holds them now
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert web.poll() is None, web.stdout.read().decode(errors="replace")
                assert time.monotonic() < deadline, "the web process did not answer"
                time.sleep(0.3)
        probe = ("import urllib.request, sys; "
                 "print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())")
        output = engine.containers.run(
            workspace_image, ["python3", "-c", probe, f"http://host.docker.internal:{port}/health"],
            network=TEST_NETWORK, extra_hosts={"host.docker.internal": gateway}, remove=True,
            labels={"molecule.workspace_id": "listener-test"},
        )
        assert json.loads(output) == {"status": "ok"}
    finally:
        web.terminate()
        web.wait(timeout=30)


def test_no_second_socket_without_docker_or_on_a_wildcard_host(monkeypatch):
    monkeypatch.setenv("MOLECULE_PROVISIONER", "local")
    assert launcher.docker_gateway("127.0.0.1") is None
    monkeypatch.setenv("MOLECULE_PROVISIONER", "docker")
    assert launcher.docker_gateway("0.0.0.0") is None  # already listening everywhere
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert launcher.docker_gateway("127.0.0.1") is None
