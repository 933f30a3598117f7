"""Which runtimes this build executes, on what, and what their INIT_START line says (stdlib only: the registry's
validation imports it).

=====================================  ==============================================================================
runtime (AWS identifier)               what runs it here
=====================================  ==============================================================================
``python3.x``                          the host's Python (the interpreter running edgelab), forked from the zygote
``nodejs18.x`` ... ``nodejs24.x``      that major of Node.js from a registry package (:mod:`.node_dist`), the shim
``provided.al2`` / ``provided.al2023`` the function's ``bootstrap`` on the host OS, over the Runtime API
=====================================  ==============================================================================

Runtimes in AWS's enum that are not in this table (java, ruby, dotnet, ``go1.x``, ``nodejs12.x``-``16.x``) are
stored and answer ``InvalidRuntimeException`` when invoked; see ``registry/config.py``.

INIT_START names what really runs (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html#runtime-
management-identify: ``Runtime Version: python:3.12.v18`` on AWS, an AWS build number after the language
version): ``python:<the host interpreter's version>``, ``nodejs:<the Node.js version>``, ``provided:<al2023 or
al2> (<the host OS>)``; never a pretended AWS build. A Python function declaring another Python than the host's
runs on the host's (AWS_EXECUTION_ENV still names the declared runtime: code branching on it sees what it asked
for), and edgelab's own log warns once per function and runtime (:func:`python_mismatch`).
"""

from __future__ import annotations

import logging
import platform
import sys

from edge.invocation.execution.node_dist import major_of_runtime

__all__ = ["CUSTOM", "CUSTOM_RUNTIMES", "NODE", "PYTHON", "custom_version", "python_mismatch", "python_version",
           "runtime_kind", "warn_python_mismatch"]

PYTHON, NODE, CUSTOM = "python", "node", "custom"
CUSTOM_RUNTIMES = frozenset({"provided.al2", "provided.al2023"})
log = logging.getLogger("edgelab.invocation.runtimes")
_warned: set[tuple[str, str]] = set()


def runtime_kind(runtime: str) -> str | None:
    """``PYTHON``, ``NODE`` or ``CUSTOM`` for a runtime this build executes, else None."""
    if runtime.startswith("python3."):
        return PYTHON
    if major_of_runtime(runtime) is not None:
        return NODE
    if runtime in CUSTOM_RUNTIMES:
        return CUSTOM
    return None


def python_version() -> str:
    """INIT_START's runtime version of every Python function: the interpreter that runs it (``python:3.11.7``)."""
    v = sys.version_info
    return f"python:{v.major}.{v.minor}.{v.micro}"


def python_mismatch(runtime: str) -> str | None:
    """Why a ``python3.x`` function does not run on the Python it declares (None when it does)."""
    v = sys.version_info
    host = f"python{v.major}.{v.minor}"
    if runtime == host or not runtime.startswith("python3."):
        return None
    try:
        declared = int(runtime.removeprefix("python3."))
    except ValueError:
        return None
    side = "newer" if declared > v.minor else "older"
    return (f"{runtime} declares a {side} Python than this host's {v.major}.{v.minor}.{v.micro}: it runs on "
            f"{v.major}.{v.minor}.{v.micro} (INIT_START says so); modules, syntax and behaviour that differ between "
            f"the two versions differ here. Install edgelab under Python {runtime.removeprefix('python')} to run it "
            f"on that version.")


def warn_python_mismatch(function_name: str, runtime: str) -> None:
    """Log :func:`python_mismatch`'s warning once per (function, runtime) in this process."""
    key = (function_name, runtime)
    if key in _warned:
        return
    problem = python_mismatch(runtime)
    if problem is not None:
        _warned.add(key)
        log.warning("function %s: %s", function_name, problem)


def _host_os() -> str:
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME") or platform.system()
    except OSError:
        return f"{platform.system()} {platform.release()}"


_HOST_OS: str | None = None


def custom_version(runtime: str) -> str:
    """INIT_START's runtime version of a ``provided.*`` function: the declared OS-only runtime and the host OS the
    bootstrap really runs on (``provided:al2023 (Debian GNU/Linux 12 (bookworm))``)."""
    global _HOST_OS
    if _HOST_OS is None:
        _HOST_OS = _host_os()
    return f"{runtime.replace('.', ':', 1)} ({_HOST_OS})"
