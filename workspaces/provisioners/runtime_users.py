"""Which user a local runtime runs as, and the file modes that keep runtimes apart.

Threat model: local processes are for agents you trust on your own machine (Docker, the next
backend, isolates them). Still, an agent runs whatever its skills say, and anyone holding a
workspace token can write skills through the Files API, so a runtime must not be the platform.

**Platform not root** (the usual ``make run``): runtimes run as the platform's own user, as they
always did. They cannot read the environment of the platform's processes once those are
undumpable (``molecule_site.hardening.make_undumpable``), but every file that user can read —
MOLECULE_HOME's keys, other workspaces' tokens — they can read too.

**Platform root**: each workspace's runtime runs as a uid of its own, with a private group of the
same number and no supplementary groups, from ``LOCAL_RUNTIME_UID_BASE`` on
(``LOCAL_RUNTIME_UID_COUNT`` ids; ids with a passwd or group entry are skipped). The id is chosen
at the workspace's first start and kept in its provisioning record, so it survives restarts.
Another uid cannot read ``/proc/<pid>/environ`` of the platform or of another runtime, nor trace
or signal them. On disk::

    MOLECULE_HOME/workspaces/            root 0711          enter, not list
      <id>/                              root:<gid> 0750    this runtime only
        configs/ workspace/ home/ plugins/  root:<gid> 2750, files 0640 (group read; setgid so
                                         files the Files API adds later get the group too)
        private/                         <uid>:<gid> 0700   the runtime's HOME, TMPDIR and cwd
        runtime.json provisioned.json .lock runtime.log   root's: the runtime cannot change them

So a runtime reads its own configs (``.auth_token`` included) and nothing of another workspace,
and writes only ``private/``, which the platform never reads: no link a runtime plants can turn
one of the platform's file operations (the Files API, the token rotation) towards another file.
The runtime's program must be runnable by an unprivileged user: an interpreter under a private
home (``/root/.pyenv``…) is not. Then :func:`runnable_runtime` runs the same installed runtime
through a system interpreter of the same version (``MOLECULE_HOME/runtime-env``), and failing
that :func:`check_runnable` names what blocks it before a start.
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import psutil
from django.conf import settings

WORKSPACES_ROOT_MODE = 0o711
WORKSPACE_HOME_MODE = 0o750
SHARED_DIR_MODE = 0o2750
PRIVATE_DIR_MODE = 0o700
PRIVATE_DIR = "private"
# The file-store roots the runtime may read (workspaces.files), besides its configs.
READABLE_ROOTS = ("configs", "workspace", "home", "plugins")
SEARCH, READ_AND_SEARCH = 0o1, 0o5
BRIDGE_DIR = "runtime-env"  # under MOLECULE_HOME: see bridge_environment  # the permission bits of "others", shifted for owner and group


def isolated() -> bool:
    """Whether runtimes run as users of their own: exactly when the platform runs as root."""
    return os.geteuid() == 0


def in_range(uid) -> bool:
    base = settings.LOCAL_RUNTIME_UID_BASE
    return isinstance(uid, int) and base <= uid < base + settings.LOCAL_RUNTIME_UID_COUNT


def pick_uid(taken: set[int]) -> int:
    """The lowest id of the range that no workspace holds and no user or group of this host has."""
    base = settings.LOCAL_RUNTIME_UID_BASE
    for uid in range(base, base + settings.LOCAL_RUNTIME_UID_COUNT):
        if uid not in taken and not _has_entry(uid):
            return uid
    raise RuntimeError(
        f"no free runtime uid left in LOCAL_RUNTIME_UID_BASE={base} + LOCAL_RUNTIME_UID_COUNT="
        f"{settings.LOCAL_RUNTIME_UID_COUNT}: widen the range"
    )


def _has_entry(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        try:
            grp.getgrgid(uid)
        except KeyError:
            return False
    return True


def lock_down(home: Path, uid: int) -> Path:
    """Give the workspace's directory the modes above for runtime ``uid``; returns ``private/``.

    Only the platform writes under ``home`` outside ``private/``, so walking it cannot be raced;
    symlinks are neither followed nor changed.
    """
    workspaces_root = home.parent
    os.chmod(workspaces_root, WORKSPACES_ROOT_MODE)
    # Entering MOLECULE_HOME is all a runtime needs of it (its files are 0600/0700 on their own).
    molecule_home = workspaces_root.parent
    os.chmod(molecule_home, stat.S_IMODE(molecule_home.stat().st_mode) | SEARCH)
    os.chown(home, 0, uid)
    os.chmod(home, WORKSPACE_HOME_MODE)
    for name in READABLE_ROOTS:
        if (home / name).is_dir():
            _share_with_group(home / name, uid)
    private = home / PRIVATE_DIR
    if private.is_dir() and private.lstat().st_uid != uid:
        shutil.rmtree(private)  # a previous uid's; fd-based on Linux, so links inside are not followed
    private.mkdir(exist_ok=True)
    os.chown(private, uid, uid, follow_symlinks=False)
    os.chmod(private, PRIVATE_DIR_MODE)
    return private


def _share_with_group(root: Path, gid: int) -> None:
    for directory, subdirectories, files in os.walk(root):
        os.chown(directory, 0, gid, follow_symlinks=False)
        os.chmod(directory, SHARED_DIR_MODE)
        for name in files:
            path = os.path.join(directory, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                os.chown(path, 0, gid, follow_symlinks=False)
                owner_bits = stat.S_IMODE(mode) & 0o700
                os.chmod(path, owner_bits | (owner_bits & 0o500) >> 3)  # the group reads (and runs)


def share_file(fd: int, gid: int) -> None:
    """A file of the platform's that the runtime reads (``.auth_token``): root's, group ``gid``, 0640."""
    os.fchown(fd, 0, gid)
    os.fchmod(fd, 0o640)


def unreachable(path: Path, uid: int, *, wanted: int = SEARCH) -> Path | None:
    """The first directory on the way to ``path`` (symlinks followed) that ``uid`` (group ``uid``)
    may not enter, or ``path`` itself when ``uid`` may not use it as ``wanted``; None when it can."""
    literal, real = Path(os.path.abspath(path)), Path(os.path.realpath(path))
    for directory in [*reversed(literal.parents), *reversed(real.parents)]:
        if not _allows(directory.stat(), uid, SEARCH):
            return directory
    return None if _allows(real.stat(), uid, wanted) else real


def _allows(status: os.stat_result, uid: int, wanted: int) -> bool:
    if status.st_uid == uid:
        granted = status.st_mode >> 6
    elif status.st_gid == uid:
        granted = status.st_mode >> 3
    else:
        granted = status.st_mode
    return granted & wanted == wanted


def _blocked(executable: Path, uid: int) -> bool:
    needed = [executable, interpreter_of(executable)]
    return any(unreachable(path, uid, wanted=READ_AND_SEARCH) for path in filter(None, needed))


def runnable_runtime(executable: Path, uid: int) -> Path:
    """``executable``, or — when ``uid`` cannot run it because its interpreter lives under a
    private home (a pyenv or venv under ``/root``, as on this kind of machine) — the same runtime
    through an interpreter every user can run: :func:`bridge_environment`. ``executable`` again
    when no such interpreter exists (:func:`check_runnable` then says what is in the way)."""
    if not _blocked(executable, uid):
        return executable
    own = _venv_packages(executable)
    if own is None:  # the platform's own environment
        bridged = bridge_environment(Path(settings.MOLECULE_HOME) / BRIDGE_DIR, uid)
    else:  # a runtime's environment of its own (LOCAL_RUNTIME_ENVS_DIR): a bridge to its packages
        bridged = bridge_environment(Path(settings.MOLECULE_HOME) / f"{BRIDGE_DIR}-{executable.parent.parent.name}",
                                     uid, packages=own)
    return bridged if bridged is not None else executable


def _venv_packages(executable: Path) -> Path | None:
    """The site-packages of the venv ``executable`` belongs to, unless that is this interpreter's."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    packages = executable.parent.parent / "lib" / f"python{version}" / "site-packages"
    if not (executable.parent.parent / "pyvenv.cfg").is_file() or not packages.is_dir():
        return None
    return None if packages.resolve() == Path(sysconfig.get_paths()["purelib"]).resolve() else packages


def bridge_environment(directory: Path, uid: int, packages: Path | None = None) -> Path | None:
    """A venv (root's, 0755) of a system interpreter of this Python version that reaches
    ``packages`` — the platform's own by default, the runtime among them — through a ``.pth``
    file: no copy, no download. Built once per MOLECULE_HOME and environment (under a lock:
    several workers may start runtimes); returns its ``molecule-runtime``, or None when there is
    no interpreter ``uid`` could run or the packages are closed to it."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    packages = packages or Path(sysconfig.get_paths()["purelib"])
    pythons = [Path(f"{prefix}/bin/python{version}") for prefix in ("/usr/local", "/usr")]
    python = next((path for path in pythons if path.is_file() and not _blocked(path, uid)), None)
    if python is None or unreachable(packages, uid, wanted=READ_AND_SEARCH):
        return None
    executable = directory / "bin" / "molecule-runtime"
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not executable.is_file():
            shutil.rmtree(directory, ignore_errors=True)  # a build cut short
            subprocess.run([str(python), "-m", "venv", "--without-pip", str(directory)], check=True,
                           capture_output=True, timeout=120)
            pth = directory / "lib" / f"python{version}" / "site-packages" / "molecule-platform.pth"
            pth.write_text(f"import site; site.addsitedir({str(packages)!r})\n")
            script = executable.with_suffix(".tmp")
            script.write_text(f"#!{directory}/bin/python\nimport sys\nfrom molecule_runtime.main import main\n"
                              "sys.exit(main())\n")
            script.chmod(0o755)
            script.rename(executable)
        os.chmod(directory, 0o755)
    return executable


def check_runnable(executable: Path, configs: Path, uid: int) -> None:
    """Refuse the start, naming what is in the way, when ``uid`` could not run ``executable``
    (nor its ``#!`` interpreter) or read ``configs``."""
    needed = [executable, interpreter_of(executable), configs]
    for path in filter(None, needed):
        blocked = unreachable(path, uid, wanted=READ_AND_SEARCH)
        if blocked is not None:
            raise RuntimeError(
                f"local runtimes run as uid {uid} because the platform runs as root, and that user cannot "
                f"reach {path} ({blocked} is closed to it): install molecule-runtime where every user can run "
                "it and point LOCAL_RUNTIME_EXECUTABLE at it, keep MOLECULE_HOME out of private directories, "
                "or run the platform as an ordinary user"
            )


def interpreter_of(script: Path) -> Path | None:
    """The interpreter of a ``#!`` script (``molecule-runtime`` is one), None for anything else."""
    try:
        with open(script, "rb") as handle:
            first = handle.readline(256)
    except OSError:
        return None
    parts = first[2:].split() if first.startswith(b"#!") else []
    return Path(os.fsdecode(parts[0])) if parts else None


def processes_of(uid: int) -> list[psutil.Process]:
    """Every process running as ``uid`` (a runtime's helpers may have left its process group)."""
    found = []
    for process in psutil.process_iter(["uids"]):
        uids = process.info["uids"]
        if uids is not None and uid in (uids.real, uids.effective):
            found.append(process)
    return found
