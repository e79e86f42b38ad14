"""``manage.py build_workspace_images``: the workspace images, built here from ``runtime/Dockerfile``.

One image per runtime (``<WORKSPACE_IMAGE_PREFIX><runtime>:<WORKSPACE_IMAGE_TAG>``), each with
that runtime's pip extra and Debian/npm packages; nothing is pulled (the base image must be local).
``make run`` calls it with ``--missing --if-docker --default``: the default runtime's and echo's
images are built once, when the Docker backend is in use; the others with ``--runtime``.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from molecule_site import docker_engine
from workspaces.provisioners.docker import build_image, docker_selected, image_name, image_spec, known_runtimes


class Command(BaseCommand):
    help = "Build the workspace runtime images (one per runtime) from runtime/Dockerfile, without pulling."

    def add_arguments(self, parser):
        parser.add_argument("--runtime", action="append", choices=known_runtimes(), dest="runtimes",
                            help="build only this runtime's image (repeatable; default: every runtime)")
        parser.add_argument("--missing", action="store_true", help="skip the images that exist already")
        parser.add_argument("--if-docker", action="store_true",
                            help="do nothing unless MOLECULE_PROVISIONER picks the Docker backend")
        parser.add_argument("--default", action="store_true", dest="default_only",
                            help="only the default runtime's image and echo's (the demo templates'): what "
                                 "`make run` builds; the other runtimes' take minutes each and are built on request")

    def handle(self, *args, runtimes=None, missing=False, if_docker=False, default_only=False, verbosity=1,
               **options):
        if if_docker and not docker_selected():
            return
        if default_only:
            runtimes = sorted({settings.WORKSPACE_DEFAULT_RUNTIME, "echo"} & set(known_runtimes()))
        try:
            client = docker_engine.connect(timeout=60)
        except docker_engine.EngineUnavailable as exc:
            raise CommandError(f"{exc} (start one, or set DOCKER_HOST)") from None
        try:
            for runtime in runtimes or known_runtimes():
                self._build(client, runtime, missing=missing, verbosity=verbosity)
        finally:
            client.close()

    def _build(self, client, runtime: str, *, missing: bool, verbosity: int) -> None:
        tag = image_name(runtime)
        if missing and client.images.list(name=tag):
            if verbosity > 1:
                self.stdout.write(f"workspace image {tag}: present")
            return
        self.stdout.write(f"workspace image {tag}: building ({image_spec(runtime).summary()}); "
                          "the first build takes a few minutes")
        started = time.monotonic()

        def progress(line: str) -> None:
            # The build's steps by default; every line of pip's output with -v 2.
            if verbosity > 1 or line.startswith("Step "):
                self.stdout.write(f"  {line}")

        try:
            build_image(client, runtime, progress=progress)
        except (RuntimeError, *docker_engine.ENGINE_ERRORS) as exc:
            raise CommandError(f"workspace image {tag}: {exc}") from None
        self.stdout.write(f"workspace image {tag}: built in {time.monotonic() - started:.0f} s")
