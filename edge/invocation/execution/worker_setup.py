"""What a worker is told at fork time: the environment's variables, paths and sandbox (:func:`worker_config`), the
role credentials it sees (:class:`Credentials`) and what the executor provides every environment
(:class:`RuntimeHost`)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from edge.invocation.execution import isolation
from edge.invocation.models import FunctionSpec

if TYPE_CHECKING:
    from pathlib import Path

    from edge.invocation.execution.zygote_client import ZygoteClient

__all__ = ["Credentials", "RuntimeHost", "WorkerFacts", "layer_paths", "python_tag", "worker_config"]


class WorkerFacts(Protocol):
    """What :func:`worker_config` reads of an environment (``Environment`` has them)."""

    spec: FunctionSpec
    tmp_dir: Path
    function_name: str
    log_group: str
    log_stream: str
    init_type: str
    region: str


@dataclass(frozen=True, slots=True)
class Credentials:
    """Role credentials exposed as AWS_ACCESS_KEY_ID & co., as Lambda gives each environment its execution role's
    temporary credentials (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-
    envvars-runtime): an SDK inside a function still signs requests, and never with the stack's own keys (the
    stack's AWS_* / EDGELAB_* variables are not passed on). :meth:`generate` makes a fresh, well-formed but fake set
    (``ASIA`` + 16 characters, a 40-character secret, a session token), one per executor start."""

    access_key_id: str = "ASIAEDGELABLOCAL0000"
    secret_access_key: str = "edgelab/local/secret/access/key/0000000000"
    session_token: str = "edgelab-local-session-token"

    @classmethod
    def generate(cls) -> Credentials:
        import base64
        import secrets
        import string

        alphabet = string.ascii_uppercase + "234567"
        key_id = "ASIA" + "".join(secrets.choice(alphabet) for _ in range(16))
        secret = base64.b64encode(secrets.token_bytes(30)).decode()
        token = "IQoJb3JpZ2luX2VkZWdlbGFi" + base64.b64encode(secrets.token_bytes(96)).decode()
        return cls(key_id, secret, token)


@dataclass(frozen=True, slots=True)
class RuntimeHost:
    """What starting an environment needs from its executor (:meth:`Environment.launch`)."""

    zygote: ZygoteClient
    credentials: Credentials
    runtime_dir: str  # the Python worker's runtime package
    project_root: str
    spares: Any = None  # the executor's node_spares.SparePool: Node environments take their process from it


def python_tag(runtime: str) -> str:
    """``python3.11`` for the layer site-packages path (from the spec's runtime, else the interpreter's)."""
    return runtime if runtime.startswith("python3") else f"python{sys.version_info[0]}.{sys.version_info[1]}"


def layer_paths(spec: FunctionSpec) -> list[str]:
    """sys.path entries for layers, like /opt/python: a later layer overrides an earlier one, so it comes first;
    within a layer ``python/lib/python3.X/site-packages`` precedes ``python`` (the managed runtime's order)."""
    tag = python_tag(spec.runtime)
    out: list[str] = []
    for layer in reversed(spec.layer_dirs):
        out += [f"{layer}/python/lib/{tag}/site-packages", f"{layer}/python"]
    return out


def worker_config(env: WorkerFacts, *, runtime_dir: str, project_root: str, credentials: Credentials,
                  iso: dict | None = None) -> dict:
    """The spawn configuration: environment variables (user ones, then reserved ones that always win), paths, and
    the environment's part of its sandbox (``sb``, see :mod:`.isolation`)."""
    spec = env.spec
    sb, tmp_path, tmp_check_mb = isolation.env_sandbox(
        iso or {}, keep=[str(spec.code_dir), *map(str, spec.layer_dirs)], tmp_dir=env.tmp_dir,
        tmp_mb=spec.ephemeral_storage_mb, memory_mb=spec.memory_mb)
    layers = list(reversed(spec.layer_dirs))
    interp_bin = os.path.dirname(sys.executable)
    variables: dict[str, str] = {
        "LANG": "en_US.UTF-8",
        "LC_CTYPE": "C.UTF-8",
        "PATH": ":".join([*(f"{d}/bin" for d in layers), interp_bin, "/usr/local/bin", "/usr/bin", "/bin"]),
        "LD_LIBRARY_PATH": ":".join([*(f"{d}/lib" for d in layers), str(spec.code_dir), f"{spec.code_dir}/lib"]),
        "PYTHONPATH": runtime_dir,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }
    variables.update(spec.environment)
    variables.update({
        "_HANDLER": spec.handler,
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "LAMBDA_RUNTIME_DIR": runtime_dir,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": env.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": env.log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": env.log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": env.init_type,
        "AWS_REGION": env.region,
        "AWS_DEFAULT_REGION": env.region,
        "AWS_ACCESS_KEY_ID": credentials.access_key_id,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
        "AWS_SESSION_TOKEN": credentials.session_token,
        "TZ": ":UTC",
        "TMPDIR": tmp_path,
    })
    cfg = {"env": variables, "task_root": str(spec.code_dir), "paths": layer_paths(spec), "tmp": tmp_path,
           "handler": spec.handler, "memory_mb": spec.memory_mb, "tmp_quota_mb": tmp_check_mb,
           "project_root": project_root}
    if sb is not None:
        cfg["sb"] = sb
    return cfg
