"""What isolates execution environments from the stack and from each other, decided once per executor.

:func:`plan` looks at what this process may use and returns the configuration the zygote applies to every
environment (:mod:`edge.invocation.runtime.sandbox` has the mechanisms); the zygote probes the mount namespace
and reports what really is in force, which :func:`describe` words as the one startup line.

============================  ============================================  =====================================
what                          mechanism (when the stack runs as root)        fallback
============================  ============================================  =====================================
signals, /proc of the stack   a uid of its own per environment (from a       none (the stack's user): a function
and of other environments     range of 32,768 per executor), ``/proc``       can signal the stack
                              with ``hidepid=invisible``
state dir (registry, code,    mount namespace: tmpfs over the state dir      none
logs, other /tmp)             and over directories others may not traverse;
                              the function's code and layers bound back
                              read-only
/tmp                          a tmpfs of exactly EphemeralStorage at the     the sandbox directory, RLIMIT_FSIZE
                              literal ``/tmp`` (``ENOSPC`` at the quota)     per file and the usage checked after
                                                                             each invocation
memory, processes             cgroup v1 ``memory`` + ``pids`` (1,024) per    RLIMIT_NPROC with the own uid; the
                              environment, the whole cgroup killed when      handler process's RSS only
                              the environment goes
============================  ============================================  =====================================

``EDGELAB_ISOLATION=off`` turns every mechanism off (the fallbacks stay).
Limits emulated: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html (1,024 processes and
threads, /tmp 512 MB to 10,240 MB), https://docs.aws.amazon.com/lambda/latest/dg/configuration-ephemeral-storage.html.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import sys
import uuid
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
UID_COUNT = 32768
UID_BASE = 1 << 31  # far above any uid a distribution hands out
_libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2
SHARED_WRITABLE = ("/dev/shm", "/var/tmp")


def _cgroup_parents(tag: str) -> dict[str, str] | None:
    out = {}
    for ctl in ("memory", "pids"):
        base = CGROUP_ROOT / ctl
        if not (base / "cgroup.procs").exists() or not os.access(base, os.W_OK):
            return None
        parent = base / "edgelab" / tag
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        out[ctl] = str(parent)
    return out


def remove_cgroup_parents(cg: dict[str, str] | None) -> None:
    for parent in (cg or {}).values():
        with contextlib.suppress(OSError):
            os.rmdir(parent)


def cleanup_orphans() -> None:
    """Remove the cgroups of executors whose process is gone (named ``<pid>-<random>``; empty ones only)."""
    for ctl in ("memory", "pids"):
        base = CGROUP_ROOT / ctl / "edgelab"
        with contextlib.suppress(OSError):
            for parent in base.iterdir():
                pid = parent.name.split("-", 1)[0]
                if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                    for child in (p for p in parent.iterdir() if p.is_dir()):
                        with contextlib.suppress(OSError):
                            os.rmdir(child)
                    with contextlib.suppress(OSError):
                        os.rmdir(parent)


def _under_tmp(path: str) -> bool:
    real = os.path.realpath(path)
    return real == "/tmp" or real.startswith("/tmp/")


def plan(state_dir: Path, keep: list[str]) -> dict:
    """The isolation configuration for this process's zygote (``keep``: paths every environment needs)."""
    if os.environ.get("EDGELAB_ISOLATION", "").lower() in ("off", "0", "none", "false"):
        return {"off": True}
    if os.geteuid() != 0:
        return {"notroot": True}
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    state = os.path.realpath(state_dir)
    keep = [os.path.realpath(p) for p in dict.fromkeys([sys.base_prefix, sys.prefix, sys.exec_prefix, *keep]) if p]
    return {
        "uid_base": UID_BASE + (os.getpid() % 65536) * UID_COUNT,
        "uid_count": UID_COUNT,
        "cg": _cgroup_parents(tag),
        "mnt": True,
        "tmpfs": True,
        # the state dir, and the host's other world-writable folders (a channel between environments, and
        # storage outside the /tmp quota): covered by an empty read-only-to-them tmpfs, as Lambda's file system
        # is read-only but for /tmp
        "hide": [state, *(d for d in SHARED_WRITABLE if os.path.isdir(d))],
        "keep": keep,
        # the literal /tmp is private unless the state dir (the functions' code and their /tmp dirs) lives under it;
        # the runtime's own paths under /tmp (a checkout or venv there) are attached again on top of the private
        # tmpfs, read-only (runtime/sandbox.py)
        "private_tmp": not _under_tmp(state),
    }


def describe(iso: dict) -> str:
    """The one startup line: what is in force and what falls back."""
    if iso.get("off"):
        return ("isolation: OFF (EDGELAB_ISOLATION=off): environments run as the stack's user with the stack's view "
                "of the files; /tmp quota checked after each invocation")
    if iso.get("notroot"):
        return ("isolation: not root: environments run as the stack's user (no own uid, no cgroups, no mount "
                "namespace); limits are rlimits of the handler process, /tmp quota checked after each invocation")
    parts = [f"own uid per environment ({iso['uid_base']}+)"]
    if iso.get("cg"):
        parts.append("cgroup memory+pids (1024) per environment, killed whole")
    else:
        parts.append("no cgroup (not writable): RLIMIT_NPROC 1024, handler RSS only")
    if iso.get("mnt"):
        parts.append("mount namespace (state dir hidden, /proc hidepid)")
        parts.append("/tmp: tmpfs at the quota" + (" on the literal /tmp" if iso.get("private_tmp") else
                                                   " at TMPDIR (state dir under /tmp: literal /tmp shared)"))
    else:
        parts.append(f"no mount namespace ({iso.get('refused', 'refused')}): /tmp quota checked after each "
                     "invocation, state dir readable")
    return "isolation: " + "; ".join(parts)


def environment_cap_bytes(memory_mb: int, tmp_mb: int) -> int:
    """The cgroup's hard memory limit: /tmp's tmpfs pages are charged to the environment's cgroup, so the kernel
    backstop is memory + /tmp (+64 MiB for the runtime's output buffer); the function's own memory is held at
    ``memory_mb`` by the watchdog's samples of the cgroup's anonymous memory."""
    return (memory_mb + tmp_mb + 64) << 20


def sandbox_root(state_dir: Path, tag: str) -> Path:
    return state_dir / "sandboxes" / tag


def release_tmp(path: Path) -> None:
    """Remove an environment's sandbox directory, unmounting its /tmp tmpfs first (blocking: run in a thread)."""
    tmp = str(path / "tmp") if path.name != "tmp" else str(path)
    if os.path.ismount(tmp):
        _libc.umount2(tmp.encode(), MNT_DETACH)
    shutil.rmtree(path if path.name != "tmp" else path.parent, ignore_errors=True)


def cleanup_sandboxes(root: Path, own: Path) -> None:
    """Remove the sandbox folders of executors whose process is gone (``<pid>-<random>``), unmounting what is
    mounted under them first (their /tmp tmpfs)."""
    if not root.is_dir():
        return
    dead = []
    for other in root.iterdir():
        pid = other.name.split("-", 1)[0]
        if other != own and (not pid.isdigit() or not os.path.exists(f"/proc/{pid}")):
            dead.append(other)  # a dead executor's, or one of the layout before executors had their own folder
    remove_sandboxes(dead)


def remove_sandboxes(dirs: list[Path]) -> None:
    """Unmount every mount under ``dirs`` (the /tmp tmpfs of their environments), then remove them."""
    if not dirs:
        return
    prefixes = [str(d.resolve()) + "/" for d in dirs]
    mounts: list[str] = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f]
    for m in sorted(mounts, key=len, reverse=True):
        if any(m.startswith(p) for p in prefixes):
            _libc.umount2(m.encode(), MNT_DETACH)
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def active(iso: dict) -> bool:
    return iso.get("uid_base") is not None or bool(iso.get("cg")) or bool(iso.get("mnt"))


def env_sandbox(iso: dict, *, keep: list[str], tmp_dir: Path | str, tmp_mb: int,
                memory_mb: int) -> tuple[dict | None, str, int]:
    """An environment's part of its sandbox (sent with ``spawn``/``exec``/``attach``), the /tmp path the function
    is told (``TMPDIR``) and the quota left to check after each invocation (0: the tmpfs enforces it)."""
    if not active(iso):
        return None, str(tmp_dir), tmp_mb
    sb = {"keep": [str(p) for p in keep], "tmp": {"path": str(tmp_dir), "size_mb": int(tmp_mb)},
          "mem_bytes": environment_cap_bytes(memory_mb, tmp_mb)}
    if not iso.get("tmpfs"):
        return sb, str(tmp_dir), tmp_mb
    return sb, ("/tmp" if iso.get("private_tmp") else str(tmp_dir)), 0


def spare_sandbox(iso: dict, *, keep: list[str], memory_mb: int) -> dict | None:
    """The sandbox of a pre-started (Node.js) process, before it knows its function: its own paths only, a
    placeholder /tmp; :func:`env_sandbox`'s part is attached when it gets one (``ZygoteClient.attach``)."""
    if not active(iso):
        return None
    return {"keep": [str(p) for p in keep], "placeholder_tmp": True,
            "mem_bytes": environment_cap_bytes(memory_mb, 10240)}
