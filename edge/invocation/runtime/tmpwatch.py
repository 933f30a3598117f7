"""The /tmp usage of one execution environment, rescanned only when something may have changed.

Summing a directory tree costs a handful of syscalls per directory after every invocation, while almost no
invocation writes to /tmp. :class:`TmpWatch` keeps an inotify watch on every directory of the tree and reuses
the last figure while no event arrived (one ``poll`` syscall per check). Contract of :meth:`TmpWatch.usage`:

- the first call scans;
- a later call scans again when inotify reported a change (a file created, written, truncated, moved in...),
  when the tree could not be watched completely (no inotify, watch limit, a directory vanished), or when the
  last scan is older than ``rescan_after_s`` (a safety net for changes inotify does not report, e.g. writes
  through a shared mmap); otherwise it returns the last scan's figure.

Usage is allocated bytes (``st_blocks``), so sparse files count what they really use.
"""

from __future__ import annotations

import ctypes
import os
import select
import time
from collections.abc import Callable

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
WATCH_MASK = IN_MODIFY | IN_ATTRIB | IN_MOVED_TO | IN_CREATE
RESCAN_AFTER_S = 1.0


class TmpWatch:
    """One environment's /tmp usage; ``libc`` is ``ctypes.CDLL(None)``; ``clock`` is injectable for tests."""

    def __init__(self, path: str, libc: ctypes.CDLL, *, rescan_after_s: float = RESCAN_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.scans = 0  # how many times the tree was walked (for tests and introspection)
        self._libc = libc
        self._clock = clock
        self._rescan_after = rescan_after_s
        self._usage = 0
        self._scanned_at: float | None = None
        self._complete = False  # every directory of the last scan is watched
        # the last figure may be reused before this clock value (-inf: never; set from the two fields above)
        self._fresh_until = float("-inf")
        self._fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        self._poll = select.poll()
        if self._fd >= 0:
            self._poll.register(self._fd, select.POLLIN)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self._complete = False
            self._fresh_until = float("-inf")

    def usage(self) -> int:
        """Allocated bytes under ``path`` (see the module docstring for when it is recomputed)."""
        now = self._clock()
        if now < self._fresh_until and not self._poll.poll(0):  # complete, recent and no inotify event
            return self._usage
        self._drain()
        self._usage = self._scan()
        self._scanned_at = now
        self._fresh_until = now + self._rescan_after if self._complete else float("-inf")
        return self._usage

    def _drain(self) -> None:
        if self._fd < 0:
            return
        try:
            while os.read(self._fd, 65536):
                pass
        except BlockingIOError:
            pass

    def _watch(self, directory: str) -> bool:
        if self._fd < 0:
            return False
        return self._libc.inotify_add_watch(self._fd, os.fsencode(directory), WATCH_MASK) >= 0

    def _scan(self) -> int:
        """Walk the tree, watching each directory before listing it (a change after the listing is seen)."""
        self.scans += 1
        complete = True
        total = 0
        stack = [self.path]
        while stack:
            directory = stack.pop()
            if not self._watch(directory):
                complete = False
            try:
                it = os.scandir(directory)
            except OSError:
                complete = False
                continue
            with it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        continue
        self._complete = complete
        return total
