"""What an invocation's outcome becomes (pure functions of the executor, :mod:`.executor`): the result value and
its metrics, and the log lines of a cold start, a failed Init and a fault (AWS's platform lines: INIT_START, the
``Task timed out`` line, ``Runtime.ExitError`` / ``Runtime.OutOfMemory`` records; see ``logs``)."""

from __future__ import annotations

import orjson

from edge.invocation.execution import logs as logfmt
from edge.invocation.execution.environment import KIND_OK, Environment, Kind, RawOutcome, describe_exit, platform_error
from edge.invocation.execution.metrics import FunctionMetrics
from edge.invocation.models import FunctionSpec, InvocationResult, InvokeOptions, Outcome

__all__ = ["fault_lines", "init_failure", "init_lines", "invocation_result", "platform_failure"]

_OK, _FUNCTION_ERROR = Outcome.OK, Outcome.FUNCTION_ERROR  # read per invocation: see environment.ENV_READY's note


def platform_failure(spec: FunctionSpec, options: InvokeOptions, fm: FunctionMetrics,
                      message: str) -> InvocationResult:
    """A Runtime.ExitError result for an invocation no environment could run."""
    fm.errors += 1
    return InvocationResult(outcome=Outcome.FUNCTION_ERROR, request_id=options.request_id,
                            payload=platform_error("Runtime.ExitError", options.request_id, message),
                            executed_version=spec.version, error_type="Runtime.ExitError")


def init_lines(env: Environment) -> list[str]:
    """A cold start's log lines before START: INIT_START and the Init output."""
    return [logfmt.init_start_line(env.runtime_version, env.region), *logfmt.output_lines(env.init_output)]


def invocation_result(spec: FunctionSpec, options: InvokeOptions, fm: FunctionMetrics, raw: RawOutcome, cold: bool,
            init_ms: float | None, log: list[str] | bytes, mem_mb: int | None = None) -> InvocationResult:
    """Metrics and the result value of one finished invocation; ``log`` is its log lines, or the record
    the worker formatted (decoded only for a caller that wants the log tail)."""
    if mem_mb is None:
        mem_mb = logfmt.max_memory_used_mb(spec.memory_mb, raw.max_rss_kb)
    tail = None
    if options.want_log_tail:
        tail = logfmt.tail(log if isinstance(log, list) else logfmt.decode_record(log)[2])
    ok = raw.kind is KIND_OK
    if not ok:
        fm.errors += 1
    if cold:
        fm.cold_starts += 1
        if init_ms is not None:
            fm.init_duration.add(init_ms)
        fm.cold_duration.add(raw.duration_ms)
        fm.cold_latency.add(raw.duration_ms + (init_ms or 0.0))
    fm.duration.add(raw.duration_ms)
    # positional, in InvocationResult's field order (outcome, payload, request_id, executed_version, cold_start,
    # init_duration_ms, duration_ms, error_type, throttle_reason, log_tail, max_memory_used_mb): keywords to a
    # class go through a kwargs dict on 3.11, ~4k more instructions (callgrind, bench core --prepared)
    return InvocationResult(_OK if ok else _FUNCTION_ERROR, raw.payload, options.request_id,
                            spec.version, cold, init_ms, raw.duration_ms, raw.error_type, None, tail, mem_mb)


def init_failure(env: Environment, failure: RawOutcome, rid: str, lines: list[str]) -> RawOutcome:
    """Turn a failed Init into this invocation's outcome (the environment is discarded on release)."""
    lines += logfmt.output_lines(failure.output)
    if failure.kind is Kind.INIT_ERROR:
        payload = env.init_error_payload(failure, rid)
        status = "error"
    elif failure.kind is Kind.TIMEOUT:
        payload = platform_error("Sandbox.Timedout", rid,
                                 f"Init phase timed out after {failure.duration_ms / 1000:.2f} seconds")
        status = "timeout"
    else:
        payload = platform_error("Runtime.ExitError", rid, describe_exit(env.exit_status))
        status = "error"
    lines.append(logfmt.init_report_line(failure.duration_ms, status, failure.error_type))
    return RawOutcome(kind=Kind.INIT_ERROR, payload=payload, error_type=failure.error_type,
                      duration_ms=failure.duration_ms, max_rss_kb=failure.max_rss_kb, output=b"", reset=True)


def fault_lines(raw: RawOutcome, rid: str, spec: FunctionSpec, lines: list[str]) -> str | None:
    """Platform log lines for faults; returns the REPORT ``Status`` (None for success/handler errors)."""
    kind = raw.kind
    if kind is Kind.OK or kind is Kind.ERROR:
        return None
    if kind is Kind.TIMEOUT:
        lines.append(logfmt.timeout_line(rid, spec.timeout_s))
        return "timeout"
    if kind in (Kind.EXIT, Kind.OOM):
        msg = orjson.loads(raw.payload).get("errorMessage", "")
        lines.append(f"{msg}\n{raw.error_type}".replace("\n", "\r"))
    return "error"
