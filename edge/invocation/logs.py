"""Lambda-format log lines and the on-disk log store (CloudWatch Logs stand-in).

Layout: ``<state_dir>/logs/<quoted group>/<quoted stream>.jsonl``; one JSON line per append (an
invocation's START..REPORT events share one): ``[epoch ms, request id or "", [message, ...]]``; lines
``{"t": epoch ms, "m": message, "r": request id}`` (one event each, the earlier format) are still read.
Every environment writes its own stream
(``YYYY/MM/DD/[<version>]<32 hex>``), so several processes (POPs) can append to one state dir without locking.

Writes are batched: :meth:`LogStore.append` only appends to an in-memory list; an owned flusher task writes the
batch every ``flush_interval_s`` in a thread (no fsync; a crash of the whole process may lose the last batch).
:meth:`LogStore.read` merges what is on disk with what is still pending in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from pathlib import Path
from urllib.parse import quote, unquote

import orjson

TAIL_BYTES = 4096
log = logging.getLogger("edgelab.invocation.logs")


# -- line formats (exact AWS texts; see lambda-core-reference.md 3.2) -------------------------------------
def runtime_version(runtime: str) -> tuple[str, str]:
    """(``python:3.11.v1``, a stable fake runtime version ARN hash) for INIT_START."""
    name = runtime.replace("python", "python:", 1) if runtime.startswith("python") else runtime
    return f"{name}.v1", hashlib.sha256(runtime.encode()).hexdigest()


def init_start_line(runtime: str, region: str) -> str:
    ver, digest = runtime_version(runtime)
    return f"INIT_START Runtime Version: {ver}\tRuntime Version ARN: arn:aws:lambda:{region}::runtime:{digest}"


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


def iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def timeout_line(request_id: str, timeout_s: float) -> str:
    return f"{iso_now()} {request_id} Task timed out after {timeout_s:.2f} seconds"


def output_lines(output: bytes) -> list[str]:
    """The function's raw stdout/stderr split into events (one per line, as CloudWatch shows print output)."""
    if not output:
        return []
    text = output.decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def tail(lines: list[str], limit: int = TAIL_BYTES) -> str:
    """The last ``limit`` bytes of the newline-terminated lines (what LogResult carries, before base64)."""
    data = "".join(f"{line}\n" for line in lines).encode("utf-8")
    return data[-limit:].decode("utf-8", "ignore")


def stream_name(version: str, env_id: str, now: float | None = None) -> str:
    return time.strftime("%Y/%m/%d/", time.gmtime(now if now is not None else time.time())) + f"[{version}]{env_id}"


# -- store --------------------------------------------------------------------------------------------------
Batch = tuple[str, str, int, list[str], str]  # group, stream, epoch ms, messages, request id (one append call)


class LogStore:
    def __init__(self, root: Path, *, flush_interval_s: float = 0.05) -> None:
        self.root = root
        self._interval = flush_interval_s
        self._pending: list[Batch] = []
        self._writing: list[Batch] = []  # the batch a flush is writing right now (still visible to read)
        self._task: asyncio.Task[None] | None = None
        self._dirs: set[Path] = set()
        self._write_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<LogStore {self.root} pending={len(self._pending)}>"

    async def start(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        if self._task is None:
            self._task = asyncio.create_task(self._flusher(), name="edgelab-log-flusher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except OSError as e:
            log.warning("log store: could not write %s: %s", self.root, e)

    def append(self, group: str, stream: str, messages: list[str], request_id: str = "",
               ts_ms: int | None = None) -> None:
        """Queue events (hot path: no I/O)."""
        ts = ts_ms if ts_ms is not None else int(time.time() * 1000)
        self._pending.append((group, stream, ts, messages, request_id))

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if self._pending:
                try:
                    await self.flush()
                except OSError as e:  # disk full, permissions...: keep serving; this batch is lost
                    log.warning("log store: could not write %s: %s", self.root, e)

    async def flush(self) -> None:
        """Write everything pending (in a thread)."""
        async with self._write_lock:
            batch, self._pending = self._pending, []
            if batch:
                self._writing = batch
                try:
                    await asyncio.to_thread(self._write, batch)
                finally:
                    self._writing = []

    def _path(self, group: str, stream: str) -> Path:
        return self.root / quote(group, safe="") / (quote(stream, safe="") + ".jsonl")

    def _write(self, batch: list[Batch]) -> None:
        per_file: dict[tuple[str, str], list[tuple[int, str, list[str]]]] = {}
        for group, stream, ts, msgs, rid in batch:
            records = per_file.get((group, stream))
            if records is None:
                records = per_file[(group, stream)] = []
            records.append((ts, rid, msgs))
        for (group, stream), records in per_file.items():
            data = b"\n".join(map(orjson.dumps, records)) + b"\n"  # one encoder call per invocation
            path = self._path(group, stream)
            if path.parent not in self._dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._dirs.add(path.parent)
            try:
                f = open(path, "ab", buffering=0)  # noqa: SIM115 - reopened below if the directory was removed
            except FileNotFoundError:
                path.parent.mkdir(parents=True, exist_ok=True)
                f = open(path, "ab", buffering=0)  # noqa: SIM115
            with f:  # O_APPEND, unbuffered: one write per file and batch (looped in case it is short)
                view = memoryview(data)
                while view:
                    written = f.write(view)
                    if not written:
                        raise OSError(f"could not append to {path}")
                    view = view[written:]

    # -- reading (blocking file I/O: call from a thread in async code, or use aread) -----------------------
    def groups(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(unquote(p.name) for p in self.root.iterdir() if p.is_dir())

    def streams(self, group: str) -> list[str]:
        gdir = self.root / quote(group, safe="")
        names = {unquote(p.name[: -len(".jsonl")]) for p in gdir.glob("*.jsonl")} if gdir.is_dir() else set()
        names.update(s for g, s, *_ in [*self._writing, *self._pending] if g == group)
        return sorted(names)

    def read(self, group: str, *, stream: str | None = None, request_id: str | None = None,
             tail: int | None = None, since: float | None = None) -> list[dict[str, object]]:
        """Events of ``group`` as ``{"timestamp" (epoch ms), "message", "stream"}``, oldest first.

        ``stream`` limits to one stream, ``request_id`` to one invocation's events, ``since`` (epoch ms) to
        events at or after it, ``tail`` to the last N events after the other filters.
        """
        events: list[tuple[int, str, str, str]] = []
        for name in ([stream] if stream is not None else self.streams(group)):
            path = self._path(group, name)
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                raw = b""
            for line in raw.splitlines():
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue  # a line being written by another process right now
                if type(obj) is list:
                    ts, rid, msgs = obj
                    events += [(ts, msg, name, rid) for msg in msgs]
                else:
                    events.append((obj["t"], obj["m"], name, obj.get("r", "")))
        # a flush may be writing right now: events of its batch already on disk must not appear twice
        seen = {(ts, msg, name) for ts, msg, name, _ in events} if self._writing else set()
        for g, s, ts, msgs, rid in [*self._writing, *self._pending]:
            if g == group and (stream is None or s == stream):
                events += [(ts, msg, s, rid) for msg in msgs if (ts, msg, s) not in seen]
        events.sort(key=lambda e: e[0])
        out = [{"timestamp": ts, "message": msg, "stream": s} for ts, msg, s, rid in events
               if (request_id is None or rid == request_id) and (since is None or ts >= since)]
        return out[-tail:] if tail else out

    async def aread(self, group: str, **kwargs: object) -> list[dict[str, object]]:
        return await asyncio.to_thread(self.read, group, **kwargs)  # type: ignore[arg-type]
