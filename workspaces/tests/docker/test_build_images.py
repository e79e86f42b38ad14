"""``manage.py build_workspace_images``: builds from runtime/Dockerfile with progress, skips what exists."""

from __future__ import annotations

import io

from django.core.management import call_command

from workspaces.provisioners.docker import image_name


def test_a_build_reports_its_steps_and_tags_the_runtime_image(engine, workspace_image):
    out = io.StringIO()
    call_command("build_workspace_images", "--runtime", "echo", stdout=out)
    text = out.getvalue()
    assert f"workspace image {image_name('echo')}: building" in text
    assert "  Step 1/" in text  # the build's steps are the progress make run prints
    assert f"workspace image {image_name('echo')}: built in" in text
    assert engine.images.get(image_name("echo")).attrs["Config"]["Labels"]["molecule.runtime"] == "echo"


def test_missing_skips_an_image_that_exists(engine, workspace_image):
    out = io.StringIO()
    call_command("build_workspace_images", "--runtime", "echo", "--missing", verbosity=2, stdout=out)
    assert out.getvalue() == f"workspace image {image_name('echo')}: present\n"


def test_if_docker_does_nothing_when_another_backend_runs_the_workspaces(settings):
    settings.MOLECULE_PROVISIONER = "local"
    out = io.StringIO()
    call_command("build_workspace_images", "--if-docker", stdout=out)
    assert out.getvalue() == ""


def test_default_builds_only_the_default_runtimes_and_echos_images(engine, workspace_image, settings):
    """`make run` builds these two; the other runtimes' images take minutes each and are built on request."""
    out = io.StringIO()
    call_command("build_workspace_images", "--default", "--missing", verbosity=2, stdout=out)
    named = {line.split(":")[0].removeprefix("workspace image ").strip() for line in out.getvalue().splitlines()
             if line.startswith("workspace image ")}
    assert named == {image_name(settings.WORKSPACE_DEFAULT_RUNTIME).split(":")[0], image_name("echo").split(":")[0]}
