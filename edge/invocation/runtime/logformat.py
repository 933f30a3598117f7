"""Lambda's platform log lines (exact AWS texts; see lambda-core-reference.md 3.2) and the log record format.

Shared by the core (``edge.invocation.execution.logs``) and the worker: a worker formats the lines of its own ordinary
invocations (START, the function's output, END, REPORT) and sends them as one encoded record, so the core only
stores bytes on its hot path. Faults (timeouts, crashes, OOM kills, Init failures) are formatted by the core,
since the worker is gone or cannot be trusted to finish.

A record is one JSON line of a stream file: ``[epoch ms, request id or "", [message, ...]]``.
"""

from __future__ import annotations

import hashlib
import math

import orjson


def init_start_line(version: str, region: str) -> str:
    """INIT_START naming the runtime version that really runs (``python:3.11.7``, ``nodejs:20.18.0``: see
    ``edge.invocation.execution.runtimes``), with a stable runtime version ARN derived from it."""
    digest = hashlib.sha256(version.encode()).hexdigest()
    return f"INIT_START Runtime Version: {version}\tRuntime Version ARN: arn:aws:lambda:{region}::runtime:{digest}"


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(request_id: str, duration_ms: float, memory_mb: int, max_used_mb: int,
                init_ms: float | None = None, status: str | None = None, error_type: str | None = None) -> str:
    line = (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\tMemory Size: {memory_mb} MB\t"
            f"Max Memory Used: {max_used_mb} MB\t")
    if init_ms is not None:
        line += f"Init Duration: {init_ms:.2f} ms\t"
    if status is not None:
        line += f"Status: {status}\t"
        if error_type:
            line += f"Error Type: {error_type}\t"
    return line


def init_report_line(init_ms: float, status: str, error_type: str | None) -> str:
    line = f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: init\tStatus: {status}\t"
    return line + (f"Error Type: {error_type}\t" if error_type else "")


def output_lines(output: bytes) -> list[str]:
    """The function's raw stdout/stderr split into events (one per line, as CloudWatch shows print output)."""
    if not output:
        return []
    text = output.decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def max_memory_used_mb(memory_mb: int, max_rss_kb: int) -> int:
    """REPORT's Max Memory Used: the peak RSS in MB, rounded up, at most the memory size."""
    used = -(-max_rss_kb // 1024)  # (integer ceiling division: no float, no math.ceil call)
    return used if used < memory_mb else memory_mb


def encode_record(ts_ms: int, request_id: str, messages: list[str]) -> bytes:
    """One record (no trailing newline)."""
    return orjson.dumps((ts_ms, request_id, messages))


def decode_record(record: bytes) -> tuple[int, str, list[str]]:
    """(epoch ms, request id, messages) of one record; raises ValueError if it is not one."""
    obj = orjson.loads(record)
    if type(obj) is not list or len(obj) != 3:
        raise ValueError("not a log record")
    return obj[0], obj[1], obj[2]
