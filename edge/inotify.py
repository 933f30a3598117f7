"""Files written in one directory, noticed on the event loop (Linux inotify): no thread, no polling.

Used by the registry's change feed (:class:`~edge.invocation.service.executor_sync.ExecutorSync`): a SQLite
commit by any process appends to ``registry.db-wal`` (or writes ``registry.db``), and the watch calls back on
the loop, so the feed reads ``PRAGMA data_version`` when something was written instead of every 100 ms in a
pool thread; the same for the CloudFront Functions store (``edge.cdn.cloudfront_functions.runner``) and the async
event queue's delivery loop (``edge.invocation.events.delivery``). Measured (``python -m bench trigger``,
2026-12-05): the poll's thread wanted the GIL back ten times a second and made a loaded POP hand it over each time;
a POP behind a warm viewer-request function served 38.2 / 39.7 / 39.1 % of plain hits with the poll, and with the
watch three sets of five runs had medians of 40.3, 40.3 and 40.0 % (README, "Performance").

Hand-written on ``ctypes`` (inotify_init1 / inotify_add_watch, the fd read by ``loop.add_reader``) rather than
``watchfiles`` (a dependency already, for the distribution file): watchfiles waits in a thread that takes the
GIL every ``step`` milliseconds to check its stop event, which is the cost this module exists to avoid.

Calls back at once when a watched file is written (at most once per ``min_interval_s`` while writes go on), and
once more ``settle_s`` after the last write: a reader may not see a SQLite commit yet when inotify reports its last
write to the WAL, because the commit becomes visible only when the writer then (after an fsync, with
``synchronous=FULL``) updates the WAL index in shared memory, which inotify does not see; the trailing call reads it.
:meth:`DirectoryWatch.open` returns False where inotify is not available
(not Linux, the per-user limit of inotify instances reached, ``fs.inotify.max_user_instances``, 128 by default):
callers then poll as before. inotify sees the writes of processes on this machine only: a state directory on a
network filesystem written from another host is caught by the callers' once-a-second poll
(:data:`FALLBACK_POLL_S`). A queue overflow or the directory
going away calls back too (callers re-check; after the directory went away the watch is closed and
:attr:`DirectoryWatch.active` is False).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import struct
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["FALLBACK_POLL_S", "DatabaseWatch", "DirectoryWatch"]

log = logging.getLogger("edgelab.inotify")

FALLBACK_POLL_S = 1.0  # a caller waiting on a watch still polls this often (a safety net, not the way changes arrive)

# <sys/inotify.h>
IN_MODIFY = 0x002
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
_MASK = IN_MODIFY | IN_MOVED_TO | IN_CREATE | IN_DELETE
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


class DirectoryWatch:
    """Calls ``callback()`` on the running loop when one of ``names`` in ``directory`` is written, created,
    moved in or deleted."""

    def __init__(self, directory: Path, names: Iterable[str], callback: Callable[[], None], *,
                 min_interval_s: float = 0.0, settle_s: float = 0.1) -> None:
        self.directory = directory
        self.names = frozenset(os.fsencode(n) for n in names)
        self.callback = callback
        self.min_interval_s = min_interval_s
        self.settle_s = settle_s
        self._fd = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_call = float("-inf")
        self._last_write = float("-inf")
        self._trailing: asyncio.TimerHandle | None = None

    @property
    def active(self) -> bool:
        return self._fd >= 0

    def open(self) -> bool:
        """Start watching (from a coroutine on the loop that should call back). False if inotify is not
        available here; nothing to close then."""
        if self._fd >= 0:
            return True
        libc = _libc()
        if libc is None:
            return False
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            log.info("inotify unavailable (%s): polling %s", os.strerror(ctypes.get_errno()), self.directory)
            return False
        if libc.inotify_add_watch(fd, os.fsencode(self.directory), _MASK) < 0:
            log.info("cannot watch %s (%s): polling it", self.directory, os.strerror(ctypes.get_errno()))
            os.close(fd)
            return False
        self._loop = asyncio.get_running_loop()
        self._fd = fd
        self._loop.add_reader(fd, self._readable)
        return True

    def close(self) -> None:
        """Stop watching (idempotent); no callback after this."""
        if self._trailing is not None:
            self._trailing.cancel()
            self._trailing = None
        if self._fd >= 0:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1

    def _readable(self) -> None:
        hit = gone = False
        while self._fd >= 0:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            except OSError as e:  # not expected from an inotify fd: stop watching rather than spin
                log.warning("inotify read on %s failed (%s): polling it", self.directory, e)
                gone = True
                break
            at = 0
            while at + _EVENT.size <= len(data):
                _wd, mask, _cookie, length = _EVENT.unpack_from(data, at)
                name = data[at + _EVENT.size:at + _EVENT.size + length].rstrip(b"\0")
                at += _EVENT.size + length
                if mask & IN_IGNORED:
                    gone = True
                elif mask & IN_Q_OVERFLOW or name in self.names:
                    hit = True
        if gone:
            self.close()
            self.callback()  # the caller re-checks, then polls (active is False)
        elif hit:
            self._notify()

    def _notify(self) -> None:
        assert self._loop is not None
        now = self._last_write = self._loop.time()
        if now >= self._last_call + self.min_interval_s:
            self._call(now)
        if self._trailing is None:
            self._trailing = self._loop.call_at(now + self.settle_s, self._settled)

    def _settled(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        settled = self._last_write + self.settle_s
        if settled > now + 0.001:  # written again since this was scheduled: wait for that write to settle
            self._trailing = self._loop.call_at(settled, self._settled)
            return
        self._trailing = None
        self._call(now)

    def _call(self, now: float) -> None:
        self._last_call = now
        self.callback()


class DatabaseWatch:
    """Writes to one SQLite database: its file and its WAL (every commit appends to one of them), watched in their
    directory. :attr:`written` is set (and ``on_write`` called) on a write, at once, at most once per ``interval_s``
    while writes go on, and once more when they settled; a change-feed task waits with
    ``wait_set(watch.written, watch.timeout)`` then clears it: :attr:`timeout` is :data:`FALLBACK_POLL_S` while
    watching, ``interval_s`` when inotify is unavailable (:attr:`written` is then never set: the wait is the old
    poll interval)."""

    def __init__(self, db_path: Path, interval_s: float, on_write: Callable[[], None] | None = None) -> None:
        self.interval_s = interval_s
        self.written = asyncio.Event()
        self._on_write = on_write
        self._watch = DirectoryWatch(db_path.parent, (db_path.name, f"{db_path.name}-wal"), self._written,
                                     min_interval_s=interval_s)

    @property
    def active(self) -> bool:
        return self._watch.active

    @property
    def timeout(self) -> float:
        return FALLBACK_POLL_S if self._watch.active else self.interval_s

    def open(self) -> bool:
        """Start watching (see :meth:`DirectoryWatch.open`)."""
        return self._watch.open()

    def close(self) -> None:
        self._watch.close()

    def _written(self) -> None:
        self.written.set()
        if self._on_write is not None:
            self._on_write()
