"""Lambda-format log lines and the on-disk log store (CloudWatch Logs stand-in).

Layout: ``<state_dir>/logs/<quoted group>/<quoted stream>.jsonl``; one JSON line per append (an
invocation's START..REPORT events share one): ``[epoch ms, request id or "", [message, ...]]``; lines
``{"t": epoch ms, "m": message, "r": request id}`` (one event each, the earlier format) are still read.
Every environment writes its own stream
(``YYYY/MM/DD/[<version>]<32 hex>``), so several processes (POPs) can append to one state dir without locking.

Writes are batched: :meth:`LogStore.append` only appends to an in-memory list; a flusher task (owned through a
:class:`~edge.tasks.TaskOwner`) writes the batch every ``flush_interval_s`` (no fsync; a crash of the whole
process may lose the last batch). A batch of up to :data:`INLINE_BYTES` is appended on the event loop itself
(one ``open``/``write``/``close`` per stream file: page-cache writes of a few microseconds each); a larger one goes to
a thread. Measured: a thread pool thread doing the file calls of every 50 ms flush wants the GIL back after each
call, so under load the event loop was made to hand over the GIL every 5 ms switch interval; a POP behind a warm
viewer-request function (``python -m bench trigger``, three runs each) served 36.8-38.5 % of plain hits with the
thread and 38.0-39.6 % with the inline write (POP CPU per triggered hit 165 -> 136-143 us).
:meth:`LogStore.read` merges what is on disk with what is still pending in this process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from urllib.parse import quote, unquote

import orjson

from edge.invocation.runtime.logformat import (
    decode_record,
    encode_record,
    end_line,
    init_report_line,
    init_start_line,
    max_memory_used_mb,
    output_lines,
    report_line,
    start_line,
)
from edge.tasks import TaskOwner

__all__ = [  # the platform line formats are defined in runtime.logformat (shared with the worker) and re-exported
    "TAIL_BYTES",
    "LogStore",
    "decode_record",
    "encode_record",
    "end_line",
    "init_report_line",
    "init_start_line",
    "iso_now",
    "max_memory_used_mb",
    "output_lines",
    "report_line",
    "start_line",
    "stream_name",
    "tail",
    "timeout_line",
]

TAIL_BYTES = 4096
INLINE_BYTES = 1 << 20  # a flush of at most this much is written on the event loop; more goes to a thread
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
log = logging.getLogger("edgelab.invocation.logs")


# -- line formats: the platform lines are shared with the worker (imported above from runtime.logformat) ---
def iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def timeout_line(request_id: str, timeout_s: float) -> str:
    return f"{iso_now()} {request_id} Task timed out after {timeout_s:.2f} seconds"


def tail(lines: list[str], limit: int = TAIL_BYTES) -> str:
    """The last ``limit`` bytes of the newline-terminated lines (what LogResult carries, before base64)."""
    data = "".join(f"{line}\n" for line in lines).encode("utf-8")
    return data[-limit:].decode("utf-8", "ignore")


def stream_name(version: str, env_id: str, now: float | None = None) -> str:
    return time.strftime("%Y/%m/%d/", time.gmtime(now if now is not None else time.time())) + f"[{version}]{env_id}"


# -- store --------------------------------------------------------------------------------------------------
Pending = tuple[str, str, bytes]  # group, stream, one encoded record (runtime.logformat.encode_record)


def _per_file(batch: list[Pending]) -> dict[tuple[str, str], bytes]:
    """The batch's records joined per (group, stream), in order, each newline-terminated."""
    per_file: dict[tuple[str, str], list[bytes]] = {}
    for group, stream, record in batch:
        records = per_file.get((group, stream))
        if records is None:
            records = per_file[(group, stream)] = []
        records.append(record)
    return {key: b"\n".join(records) + b"\n" for key, records in per_file.items()}


class LogStore:
    def __init__(self, root: Path, *, flush_interval_s: float = 0.05) -> None:
        self.root = root
        self._interval = flush_interval_s
        self._pending: list[Pending] = []
        self._writing: list[Pending] = []  # the batch a flush is writing right now (still visible to read)
        self._tasks = TaskOwner("edgelab-log-store")
        self._dirs: set[Path] = set()
        self._write_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<LogStore {self.root} pending={len(self._pending)}>"

    async def start(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        self._tasks.spawn(self._flusher(), key="flusher")  # one flusher, however often start is called

    async def close(self) -> None:
        await self._tasks.aclose()
        try:
            await self.flush()
        except OSError as e:
            log.warning("log store: could not write %s: %s", self.root, e)

    def append(self, group: str, stream: str, messages: list[str], request_id: str = "",
               ts_ms: int | None = None) -> None:
        """Queue events (no I/O)."""
        ts = ts_ms if ts_ms is not None else int(time.time() * 1000)
        self._pending.append((group, stream, encode_record(ts, request_id, messages)))

    def append_record(self, group: str, stream: str, record: bytes) -> None:
        """Queue one record a worker encoded itself (the invocation hot path: no formatting, no I/O)."""
        self._pending.append((group, stream, record))

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if self._pending:
                try:
                    await self.flush()
                except OSError as e:  # disk full, permissions...: keep serving; this batch is lost
                    log.warning("log store: could not write %s: %s", self.root, e)

    async def flush(self) -> None:
        """Write everything pending: on the event loop up to :data:`INLINE_BYTES`, else in a thread."""
        async with self._write_lock:
            batch, self._pending = self._pending, []
            if batch:
                files = _per_file(batch)
                if sum(len(data) for data in files.values()) <= INLINE_BYTES:
                    self._write(files)
                    return
                self._writing = batch
                try:
                    await asyncio.to_thread(self._write, files)
                finally:
                    self._writing = []

    def _path(self, group: str, stream: str) -> Path:
        return self.root / quote(group, safe="") / (quote(stream, safe="") + ".jsonl")

    def _write(self, files: dict[tuple[str, str], bytes]) -> None:
        for (group, stream), data in files.items():
            path = self._path(group, stream)
            if path.parent not in self._dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._dirs.add(path.parent)
            try:
                fd = os.open(path, _APPEND, 0o644)
            except FileNotFoundError:  # the directory was removed since (e.g. an admin wiping the logs)
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, _APPEND, 0o644)
            try:  # O_APPEND: one write per file and batch (looped in case it is short)
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    if not written:
                        raise OSError(f"could not append to {path}")
                    view = view[written:]
            finally:
                os.close(fd)

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
        """Events of ``group`` as ``{"timestamp" (epoch ms), "message", "stream", "request_id"}``, oldest first.

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
        for g, s, record in [*self._writing, *self._pending]:
            if g == group and (stream is None or s == stream):
                ts, rid, msgs = decode_record(record)
                events += [(ts, msg, s, rid) for msg in msgs if (ts, msg, s) not in seen]
        events.sort(key=lambda e: e[0])
        out = [{"timestamp": ts, "message": msg, "stream": s, "request_id": rid} for ts, msg, s, rid in events
               if (request_id is None or rid == request_id) and (since is None or ts >= since)]
        return out[-tail:] if tail else out

    async def aread(self, group: str, *, stream: str | None = None, request_id: str | None = None,
                    tail: int | None = None, since: float | None = None) -> list[dict[str, object]]:
        """:meth:`read` in a worker thread."""
        return await asyncio.to_thread(self.read, group, stream=stream, request_id=request_id, tail=tail,
                                       since=since)
