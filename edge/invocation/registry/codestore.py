"""Content-addressed store of deployment packages under ``<state_dir>/code/``.

Layout::

    code/zips/<sha256-hex>.zip     the uploaded bytes (GetFunction's Code.Location serves them)
    code/extracted/<sha256-hex>/   extracted once, read-only; FunctionSpec.code_dir / layer_dirs point here
    code/tmp/                      staging area: files and trees are built here, then renamed into place

Writers never expose half-written content: a zip is written to ``tmp`` and ``os.replace``d; a package is
extracted into a temp dir in ``tmp`` and ``os.rename``d to its final name. Several processes may store the
same package at once; whoever renames second simply discards its copy. Blocking I/O: call from a thread.

Staging names carry the writer's pid (``<sha>-p<pid>-...``, ``p<pid>-....zip``); opening a store removes what
writers whose process is gone left there (killed mid-extraction), and unnamed leftovers older than an hour.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

from edge.invocation.errors import ServiceException
from edge.invocation.registry.packages import (
    PackageInfo,
    PackageLimits,
    extract_zip,
    inspect_zip,
    make_read_only,
    remove_tree,
)

__all__ = ["CodeStore"]

_WRITER = re.compile(r"(?:^|-)p(\d+)-")
ORPHAN_AGE_S = 3600.0  # a staging entry without a writer's pid (an older layout) is removed past this age


class CodeStore:
    """Stores zips by SHA-256 and extracts each one exactly once into a read-only directory."""

    def __init__(self, root: Path, limits: PackageLimits = PackageLimits()) -> None:
        self.root = root
        self.limits = limits
        self._zips = root / "zips"
        self._extracted = root / "extracted"
        self._tmp = root / "tmp"
        for d in (self._zips, self._extracted, self._tmp):
            d.mkdir(parents=True, exist_ok=True)
        self.removed_orphans = self._remove_orphans()

    def _remove_orphans(self) -> int:
        """Remove staging entries whose writer is gone; returns how many were removed."""
        removed = 0
        now = time.time()
        for entry in self._tmp.iterdir():
            m = _WRITER.search(entry.name)
            try:
                if m:
                    if os.path.exists(f"/proc/{m.group(1)}"):
                        continue
                elif now - entry.lstat().st_mtime < ORPHAN_AGE_S:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    remove_tree(entry)
                else:
                    entry.unlink()
                removed += 1
            except OSError:
                continue  # another process removed it first
        return removed

    def put(self, data: bytes) -> PackageInfo:
        """Validate, store and extract ``data``; idempotent. Raises LambdaError subclasses on bad packages."""
        info = inspect_zip(data, self.limits)
        zip_path = self.zip_path(info.sha256_hex)
        if not zip_path.exists():
            self._write_atomic(zip_path, data)
        self._ensure_extracted(info.sha256_hex, data)
        return info

    def zip_path(self, sha256_hex: str) -> Path:
        return self._zips / f"{sha256_hex}.zip"

    def code_dir(self, sha256_hex: str) -> Path:
        """The extracted, read-only package root for a stored zip (no I/O)."""
        return self._extracted / sha256_hex

    def read_zip(self, sha256_hex: str) -> bytes:
        return self.zip_path(sha256_hex).read_bytes()

    def has(self, sha256_hex: str) -> bool:
        return self.zip_path(sha256_hex).is_file()

    def ensure_extracted(self, sha256_hex: str) -> Path:
        """Re-extract from the stored zip if the directory went missing (e.g. someone cleaned it)."""
        final = self.code_dir(sha256_hex)
        if not final.is_dir():
            if not self.has(sha256_hex):
                raise ServiceException(f"Code package {sha256_hex} is missing from the code store")
            self._ensure_extracted(sha256_hex, self.read_zip(sha256_hex))
        return final

    def _write_atomic(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix=f"p{os.getpid()}-", suffix=".zip")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _ensure_extracted(self, sha256_hex: str, data: bytes) -> None:
        final = self.code_dir(sha256_hex)
        if final.is_dir():
            return
        staging = Path(tempfile.mkdtemp(dir=self._tmp, prefix=f"{sha256_hex[:12]}-p{os.getpid()}-"))
        try:
            extract_zip(data, staging, self.limits)
            try:
                os.rename(staging, final)
            except OSError:
                if not final.is_dir():  # not the "another process won the race" case
                    raise
                remove_tree(staging)
                return
            # after the rename: moving a directory needs write permission on it (its ".." entry changes)
            make_read_only(final)
        except BaseException:
            if staging.exists():
                remove_tree(staging)
            raise
