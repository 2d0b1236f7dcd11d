"""Where an isolated MAD's process runs: resource limits always, inside bubblewrap when it is installed.

In bubblewrap the process sees the system folders and Python read-only, a private /tmp, its
own state folder and the MAD_HOME folders its class declares writable, and nothing else: no
other MAD's state, no master key, no network unless allowed, no other process. Without
bubblewrap only the limits and a minimal environment hold, and the ecosystem says so once.
"""
from __future__ import annotations

import ctypes
import math
import os
import resource
import shutil
import signal
import sys
from collections.abc import Iterable
from pathlib import Path

from ..errors import UsageError
from . import Isolation

SANDBOXES = ("auto", "bwrap", "rlimits")
"""MAD_SANDBOX: `auto` uses bubblewrap when installed, `bwrap` requires it, `rlimits` never uses it."""
EXIT_MEMORY = 86
"""The exit code of a child that ran out of its memory limit (MemoryError)."""
NOFILE = 1024
PR_SET_PDEATHSIG = 1
PR_SET_PTRACER = 0x59616D61
SYSTEM_FOLDERS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/nsswitch.conf", "/etc/passwd",
                "/etc/group", "/etc/mime.types")
NETWORK_FILES = ("/etc/resolv.conf", "/etc/hosts", "/etc/host.conf", "/etc/gai.conf", "/etc/ssl",
                 "/etc/ca-certificates", "/etc/pki", "/etc/services", "/etc/protocols")
MiB = 1024 * 1024


def bwrap_binary() -> str | None:
    return shutil.which("bwrap")


def choose(sandbox: str) -> str:
    """`bwrap` or `rlimits` for a MAD_SANDBOX setting; UsageError when bubblewrap is required and missing."""
    if sandbox not in SANDBOXES:
        raise UsageError(f"MAD_SANDBOX must be one of {', '.join(SANDBOXES)}, got {sandbox!r}")
    if sandbox == "rlimits":
        return "rlimits"
    if bwrap_binary() is None:
        if sandbox == "bwrap":
            raise UsageError("bubblewrap (bwrap) is required by MAD_SANDBOX=bwrap but is not installed "
                             "(apt-get install bubblewrap)")
        return "rlimits"
    return "bwrap"


# in the child ---------------------------------------------------------------------------
def apply_limits(isolation: Isolation) -> None:
    """Set the process's limits (inherited by whatever it starts) and make it die with its parent."""
    memory = isolation.memory_mb * MiB
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = max(1, math.ceil(isolation.cpu_seconds))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    _lower(resource.RLIMIT_NOFILE, NOFILE)
    _lower(resource.RLIMIT_NPROC, max(512, _processes_of_this_user() + 128))
    die_with_parent()
    allow_profiling()


def _lower(limit: int, value: int) -> None:
    soft, hard = resource.getrlimit(limit)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(limit, (value, value))


def _processes_of_this_user() -> int:
    """Processes of this uid that this process can see (NPROC counts them, so the limit starts above)."""
    uid = os.getuid()
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                continue
    return count


def allow_profiling() -> None:
    """PR_SET_PTRACER: the core's py-spy may sample this process where ptrace is limited to ancestors."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PTRACER, ctypes.c_ulong(-1).value, 0, 0, 0)


def die_with_parent() -> None:
    """PR_SET_PDEATHSIG: the kernel kills this process when its parent goes, however that happens."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# in the core --------------------------------------------------------------------------------
def python_folders() -> list[Path]:
    """What the child's Python needs to read: its prefixes, site-packages folders, and the mads package."""
    import mads

    folders = {Path(os.path.realpath(p)) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    folders |= {Path(os.path.realpath(p)) for p in sys.path if p.endswith(("site-packages", "dist-packages"))
                and os.path.isdir(p)}
    folders.add(package_folder(mads.__file__))
    return sorted(_outermost(folders))


def package_folder(init_file: str | None) -> Path:
    return Path(os.path.realpath(init_file or "")).parent


def _outermost(folders: Iterable[Path]) -> list[Path]:
    """The folders with every folder inside another one left out."""
    kept: list[Path] = []
    for folder in sorted(folders, key=lambda p: len(p.parts)):
        if not any(folder.is_relative_to(k) for k in kept):
            kept.append(folder)
    return kept


def environment(home: Path, sandbox: str) -> dict[str, str]:
    """The child's whole environment: never a key, a token, or another MAD's paths."""
    import mads

    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(package_folder(mads.__file__).parent),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONFAULTHANDLER": "1",
        "MALLOC_ARENA_MAX": "1",
        "MAD_SANDBOX": sandbox,
    }


def bwrap_command(command: list[str], *, network: bool, writable: list[Path], workdir: Path) -> list[str]:
    """`bwrap ... -- command`: system and Python read-only, a private /tmp, only `writable` writable."""
    binary = bwrap_binary()
    if binary is None:
        raise UsageError("bubblewrap (bwrap) is not installed")
    args = [binary, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session"]
    if os.getuid() == 0:  # root inside would be root outside for every bound file: run as nobody, no caps
        args += ["--uid", "65534", "--gid", "65534", "--cap-drop", "ALL"]
    if network:
        args.append("--share-net")
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]  # first: what is bound below /tmp stays seen
    for folder in SYSTEM_FOLDERS:
        if os.path.islink(folder):
            args += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            args += ["--ro-bind", folder, folder]
    for name in SYSTEM_FILES + (NETWORK_FILES if network else ()):
        args += ["--ro-bind-try", name, name]
    for readable in python_folders():
        args += ["--ro-bind", str(readable), str(readable)]
    for place in writable:
        args += ["--bind", str(place), str(place)]
    args += ["--remount-ro", "/", "--chdir", str(workdir), "--", *command]
    return args


def nested_command(command: list[str], *, workdir: Path) -> list[str] | None:
    """A sandbox inside the sandbox (Hopper's runs): everything read-only but `workdir`, no network; None when
    bubblewrap cannot run here."""
    binary = bwrap_binary()
    if binary is None:
        return None
    return [binary, "--ro-bind", "/", "/", "--dev", "/dev", "--bind", str(workdir), str(workdir),
            "--unshare-user", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
            "--new-session", "--chdir", str(workdir), "--", *command]
