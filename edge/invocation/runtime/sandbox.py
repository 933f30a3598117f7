"""Putting a freshly forked environment process into its sandbox (runs as root in the zygote's child, before any
function code, and before ``execve`` for Node.js and custom runtimes). The core decides what is in force
(:mod:`edge.invocation.execution.isolation`); this module only applies it. Each step is taken when its part of the
sandbox description (``sb``, a dict sent with the ``spawn``/``exec`` message) asks for it:

- ``cg``: join a cgroup v1 ``memory`` and ``pids`` group of the environment's own (:func:`join_cgroup`), with
  ``memory.limit_in_bytes`` and ``pids.max`` (1,024: AWS's "Processes and threads" quota,
  https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html). Every process the function starts is in
  it, also after ``setsid``: the zygote kills the whole group when the environment goes (:func:`kill_cgroup`).
- ``tmp``: the environment's ``/tmp`` is a tmpfs of exactly the EphemeralStorage size
  (https://docs.aws.amazon.com/lambda/latest/dg/configuration-ephemeral-storage.html), mounted in the zygote's
  namespace at the sandbox path (so it survives a reset of the environment, as AWS keeps /tmp across one, and
  vanishes with the zygote) and
  bind-mounted on the literal ``/tmp`` when ``private_tmp``: a write past the quota fails with ``ENOSPC``.
- ``mnt``: a mount namespace of its own where the stack's state directory and every directory other users may not
  traverse (``/root``, ...) are covered by empty tmpfs, the paths the environment needs (its code, layers, the
  interpreter, the runtime) bound back read-only, and ``/proc`` mounted again with ``hidepid=invisible``: the
  stack's processes, the registry, other functions' code and other environments' /tmp are not there. Built in two
  steps: what no environment changes (:func:`prepare_mount_namespace`, ahead in the zygote's spare), then the
  environment's own paths and /tmp (:func:`enter_mount_namespace`).
- ``uid``: an unprivileged user of the environment's own (``setresuid``/``setresgid``, no supplementary groups),
  so it can neither signal nor inspect the stack's processes nor other environments' (``EPERM``), with
  ``RLIMIT_NPROC`` 1,024 as the process quota where the cgroup is not available.

Nothing here is on the warm path. On the cold path, what is left after the spare's preparation took 0.70 ms in the
child (median of 122 cold starts at load 2.6: cgroup limits 0.07, /tmp 0.17, mount namespace 0.32, uid 0.06 ms).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import time

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
O_PATH = 0o10000000
PROCESS_LIMIT = 1024


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(libc: ctypes.CDLL, src: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    _check(libc.mount(src.encode() if src else None, target.encode(), fstype.encode() if fstype else None,
                      flags, data.encode() if data else None), f"mount {target}")


def umount(libc: ctypes.CDLL, target: str) -> bool:
    return libc.umount2(target.encode(), MNT_DETACH) == 0


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


# -- cgroups (v1 memory + pids) ----------------------------------------------------------------------------------
def create_cgroup(cg: dict) -> tuple[int, int]:
    """Create the environment's ``memory`` and ``pids`` groups (``pids.max`` 1,024) and open their ``tasks`` for
    writing: :func:`join_cgroup` with these descriptors moves the writer in (the zygote creates a spare's groups
    before forking it, so the spare joins groups the zygote can rename, see :func:`rename_cgroup`)."""
    mem, pids = os.path.join(cg["memory"], cg["name"]), os.path.join(cg["pids"], cg["name"])
    for d in (mem, pids):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d)
    _write(f"{pids}/pids.max", str(PROCESS_LIMIT))
    procs = os.open(f"{mem}/tasks", os.O_WRONLY | os.O_CLOEXEC)
    try:
        return procs, os.open(f"{pids}/tasks", os.O_WRONLY | os.O_CLOEXEC)
    except BaseException:
        os.close(procs)
        raise


def join_cgroup(procs: tuple[int, ...]) -> None:
    """Move the calling process into the groups whose ``tasks`` :func:`create_cgroup` opened (closes them).

    ``tasks``, not ``cgroup.procs``: "0" there moves only the calling thread, and the kernel (6.0+) then skips
    the global threadgroup rwsem, whose write lock waits for an RCU grace period whenever no other move just
    passed one (and holds cgroup_mutex meanwhile, so the zygote's mkdir/rmdir/rename wait too). The caller is single
    threaded (a fork's child: the zygote starts no thread), so the whole process moves, and what it starts later is
    born in the groups. Both groups, 20 forked children 30 ms apart: ``cgroup.procs`` median 11.7 ms (max 15.9),
    ``tasks`` median 0.16 ms (max 0.20); in cold starts ``cgroup.procs`` took 0.3 ms or 5-18 ms (45% of 41, load
    2.9)."""
    try:
        for fd in procs:
            os.write(fd, b"0")
    finally:
        for fd in procs:
            os.close(fd)


def limit_memory(cg: dict) -> None:
    """The environment's hard memory limit (``mem_bytes``: memory + /tmp + output, see ``isolation``)."""
    mem = os.path.join(cg["memory"], cg["name"])
    _write(f"{mem}/memory.limit_in_bytes", str(int(cg["mem_bytes"])))
    with contextlib.suppress(OSError):  # no swap accounting on this kernel: the memory limit alone holds
        _write(f"{mem}/memory.memsw.limit_in_bytes", str(int(cg["mem_bytes"])))


def rename_cgroup(cg: dict, old: str, new: str) -> None:
    """Rename an environment's groups (cgroup v1 allows it within a parent; members stay): a spare's groups get the
    name of the environment it becomes, the name the core and :func:`kill_cgroup` know it by."""
    for ctl in ("memory", "pids"):
        os.rename(os.path.join(cg[ctl], old), os.path.join(cg[ctl], new))


def cgroup_pids(cg: dict) -> list[int]:
    try:
        with open(os.path.join(cg["pids"], cg["name"], "cgroup.procs"), "rb") as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def kill_cgroup(cg: dict) -> bool:
    """SIGKILL every process of the environment's cgroup (new forks are refused first: ``pids.max`` 0), then
    remove the groups. True when they are gone (False: something is still exiting; call again later)."""
    pids_dir = os.path.join(cg["pids"], cg["name"])
    if not os.path.isdir(pids_dir):
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join(cg["memory"], cg["name"]))
        return True
    with contextlib.suppress(OSError):
        _write(f"{pids_dir}/pids.max", "0")
    for _ in range(20):
        members = cgroup_pids(cg)
        if not members:
            break
        for pid in members:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.0005)
    gone = True
    for d in (pids_dir, os.path.join(cg["memory"], cg["name"])):
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass
        except OSError:
            gone = False
    return gone


def memory_stat_fd(sb: dict) -> int | None:
    """An open ``memory.stat`` of the environment's cgroup (read by the memory watchdog after privileges are
    dropped), or None without cgroups."""
    cg = sb.get("cg")
    if not cg:
        return None
    return os.open(os.path.join(cg["memory"], cg["name"], "memory.stat"), os.O_RDONLY | os.O_CLOEXEC)


def cgroup_rss_kb(fd: int) -> int:
    """Anonymous memory of the whole environment (``rss`` of ``memory.stat``; /tmp's tmpfs pages are ``shmem``
    and do not count, as /tmp is not part of a function's memory on AWS)."""
    data = os.pread(fd, 4096, 0)
    i = data.find(b"\nrss ")
    if i < 0:
        return 0
    j = data.find(b"\n", i + 5)
    return int(data[i + 5:j]) // 1024


# -- /tmp --------------------------------------------------------------------------------------------------------
def mount_tmp(libc: ctypes.CDLL, path: str, size_mb: int, uid: int | None) -> None:
    """A tmpfs of ``size_mb`` at ``path`` (in the host's namespace: it outlives the process, as /tmp outlives a
    reset); when one is there already (a reset), its files are handed to ``uid``. A mount point is told by its
    device, not by ``os.path.ismount`` (whose ``realpath`` of the parent costs a ``stat`` per path component): this
    step went from 0.33 to 0.16 ms (median of 122 cold starts, timed in the child)."""
    path = path.rstrip("/")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        os.makedirs(path, exist_ok=True)
        st = os.stat(path)
    if st.st_dev != os.stat(os.path.dirname(path)).st_dev:
        if uid is not None and st.st_uid != uid:
            _chown_tree(path, uid)
        return
    opts = f"size={int(size_mb)}m,mode=0700" + (f",uid={uid},gid={uid}" if uid is not None else "")
    _mount(libc, "tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, opts)


def _chown_tree(root: str, uid: int) -> None:
    os.lchown(root, uid, uid)
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            with contextlib.suppress(OSError):
                os.lchown(os.path.join(d, name), uid, uid)


# -- mount namespace ---------------------------------------------------------------------------------------------
def hidden_roots(keep: list[str], hide: list[str]) -> list[str]:
    """The directories to cover: ``hide`` plus, for each kept path, its first ancestor other users may not
    traverse (``/root`` for an interpreter installed there); nested ones are dropped (their parent covers them)."""
    roots = set(hide)
    for path in keep:
        parts = path.rstrip("/").split("/")
        for n in range(2, len(parts)):
            anc = "/".join(parts[:n])
            try:
                if not os.stat(anc).st_mode & 0o001:
                    roots.add(anc)
                    break
            except OSError:
                break
    out: list[str] = []
    for r in sorted(roots, key=len):
        if os.path.isdir(r) and not any(r == o or r.startswith(o + "/") for o in out):
            out.append(r)
    return out


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r + "/") for r in roots)


_SYS_OPEN_TREE, _SYS_MOVE_MOUNT = 428, 429  # the same numbers on x86_64 and aarch64 (the new mount API)
OPEN_TREE_CLONE, AT_RECURSIVE, AT_EMPTY_PATH, MOVE_MOUNT_F_EMPTY_PATH = 1, 0x8000, 0x1000, 0x4


def _bind(libc: ctypes.CDLL, fd: int, target: str, readonly: bool) -> None:
    """Attach the detached copy ``fd`` (:func:`open_paths`) at ``target`` (``move_mount``: a copy taken in another
    mount namespace can be attached here, which a plain bind mount refuses)."""
    os.makedirs(target, exist_ok=True)
    _check(libc.syscall(_SYS_MOVE_MOUNT, fd, b"", -100, target.encode(), MOVE_MOUNT_F_EMPTY_PATH),
           f"move_mount {target}")
    if readonly:
        _mount(libc, None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def bind_paths(libc: ctypes.CDLL, fds: list[tuple[int, str, bool]]) -> None:
    for fd, target, readonly in sorted(fds, key=lambda t: len(t[1])):
        _bind(libc, fd, target, readonly)
        os.close(fd)


def _open_tree(libc: ctypes.CDLL, path: str) -> int:
    fd = libc.syscall(_SYS_OPEN_TREE, -100, path.encode(), OPEN_TREE_CLONE | AT_RECURSIVE | os.O_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"open_tree {path}: {os.strerror(err)}")
    return int(fd)


def open_paths(libc: ctypes.CDLL, paths: list[tuple[str, bool]]) -> list[tuple[int, str, bool]]:
    """Detached copies (``open_tree(OPEN_TREE_CLONE)``) of ``paths``, taken before they are covered."""
    out = []
    for p, ro in paths:
        with contextlib.suppress(OSError):  # a layer or code dir removed meanwhile: the function will not find it
            out.append((_open_tree(libc, p), p, ro))
    return out


def prepare_mount_namespace(libc: ctypes.CDLL, roots: list[str], runtime: list[str]) -> list:
    """The part of an environment's mount namespace no environment changes, built ahead in the zygote's spare:
    a namespace of its own (``unshare``: a copy of every mount of the zygote's, the other environments' /tmp too),
    ``roots`` (the runtime's, :func:`hidden_roots`) covered, the ``runtime`` paths under them bound back
    read-only, ``/proc`` with ``hidepid``. Returns ``[host, own, roots]``: descriptors of the namespace the
    environment's paths are found in (the zygote's) and of the new one, for :func:`enter_mount_namespace`. Ahead in
    the spare this takes ~0.35 ms of the ~0.65 ms the whole step took in the child of a cold start."""
    host = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        fds = open_paths(libc, [(p, True) for p in runtime if p and _under(p, roots)])
        _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
        for root in roots:
            _mount(libc, "tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
        bind_paths(libc, fds)
        _mount(libc, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible")
        return [host, os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC), roots]
    except BaseException:
        os.close(host)
        raise


def _setns(libc: ctypes.CDLL, fd: int) -> None:
    _check(libc.setns(fd, CLONE_NEWNS), "setns")


def enter_mount_namespace(libc: ctypes.CDLL, sb: dict, prepared: list) -> None:
    """Finish the environment's view in the namespace ``prepared`` (:func:`prepare_mount_namespace`; the caller is
    back in the host namespace, where its paths are found): the roots of its own paths (``walk``) covered too, /tmp
    replaced (private, or a Node.js spare's placeholder), its paths bound; what a new cover hides of the runtime's
    paths is bound again on top. Both descriptors are closed."""
    host, own, pre_roots = prepared
    try:
        keep: list[str] = [p for p in sb["keep"] if p]
        runtime = set(sb.get("runtime", ()))
        tmp = sb.get("tmp")
        private_tmp = bool(tmp and sb.get("private_tmp"))
        wanted = [(p, True) for p in keep]
        if tmp and not private_tmp:
            wanted.append((tmp["path"], False))
        roots = hidden_roots(sb.get("walk", keep), pre_roots)  # every root, nested ones dropped
        extra = [r for r in roots if r not in pre_roots]
        # what gets covered must come back: the hidden roots and, when /tmp is replaced (private or a spare's
        # placeholder), the kept paths that live under /tmp (a checkout or venv there) are re-attached on top; the
        # runtime's paths are in place already unless a cover made here hides them
        tmp_covered = private_tmp or bool(sb.get("placeholder_tmp"))
        covered = [*roots, "/tmp"] if tmp_covered else roots
        new = [*extra, "/tmp"] if tmp_covered else extra
        fds = open_paths(libc, [(p, ro) for p, ro in wanted if _under(p, new if p in runtime else covered)])
        tmp_fd = _open_tree(libc, tmp["path"]) if tmp and private_tmp else -1
        _setns(libc, own)
    finally:
        os.close(host)
        os.close(own)
    for root in extra:
        _mount(libc, "tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    if private_tmp:
        _bind(libc, tmp_fd, "/tmp", False)
        os.close(tmp_fd)
    elif sb.get("placeholder_tmp"):  # a Node.js spare: its /tmp is bound when it gets its function (attach)
        _mount(libc, "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=4k,mode=0755")
    bind_paths(libc, fds)


PR_SET_DUMPABLE = 4


def drop_privileges(libc: ctypes.CDLL, uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # a change of user clears it: /proc/self would stay root's
    resource.setrlimit(resource.RLIMIT_NPROC, (PROCESS_LIMIT, PROCESS_LIMIT))


def enter(libc: ctypes.CDLL, sb: dict | None) -> None:
    """Apply ``sb`` to the calling process (root, single-threaded, just forked). The caller re-arms its
    parent-death signal afterwards: a change of user clears it."""
    if not sb:
        return
    uid = sb.get("uid")
    cg = sb.get("cg")
    if cg:
        if not cg.get("joined"):  # a spare joined its groups before it was given this environment
            join_cgroup(create_cgroup(cg))
        limit_memory(cg)
    prepared = None
    if sb.get("mnt"):  # prepared ahead by a spare, or now
        prepared = sb.get("prepared") or prepare_mount_namespace(libc, sb.get("hide", []), sb.get("runtime", []))
        _setns(libc, prepared[0])  # back where the environment's paths (and its /tmp's mount point) are
    tmp = sb.get("tmp")
    if tmp and tmp.get("tmpfs"):
        mount_tmp(libc, tmp["path"], tmp["size_mb"], uid)
    if prepared is not None:
        enter_mount_namespace(libc, sb, prepared)
    if uid is not None:
        drop_privileges(libc, uid)


def attach(libc: ctypes.CDLL, pid: int, sb: dict) -> None:
    """Give a running (pre-started Node.js) environment its function's paths and /tmp: in a helper forked by the
    zygote, mount the /tmp tmpfs in the host's namespace, then enter the process's mount namespace and bind its
    code, layers and /tmp there. ``sb`` as for :func:`enter` (``keep``: the function's paths)."""
    uid = sb.get("uid")
    tmp = sb.get("tmp")
    cg = sb.get("cg")
    if cg and sb.get("mem_bytes"):  # the function's memory + /tmp now that it is known
        with contextlib.suppress(OSError):
            _write(os.path.join(cg["memory"], cg["name"], "memory.limit_in_bytes"), str(int(sb["mem_bytes"])))
    if tmp and tmp.get("tmpfs"):
        mount_tmp(libc, tmp["path"], tmp["size_mb"], uid)
    if not sb.get("mnt"):
        return
    private_tmp = bool(tmp and sb.get("private_tmp"))
    keep = [p for p in sb["keep"] if p]
    wanted = [(p, True) for p in keep]
    if tmp and not private_tmp:
        wanted.append((tmp["path"], False))
    roots = hidden_roots(keep, list(sb.get("hide", [])))
    covered = roots
    if private_tmp:  # the function's /tmp replaces the spare's placeholder: the runtime's paths under /tmp come back
        covered = [*roots, "/tmp"]
        wanted += [(p, True) for p in sb.get("runtime_keep", []) if _under(p, ["/tmp"])]
    fds = open_paths(libc, [(p, ro) for p, ro in wanted if _under(p, covered)])
    tmp_fd = _open_tree(libc, tmp["path"]) if tmp and private_tmp else -1
    ns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    _check(libc.setns(ns, CLONE_NEWNS), "setns")
    os.close(ns)
    if private_tmp:
        _bind(libc, tmp_fd, "/tmp", False)
    bind_paths(libc, fds)
