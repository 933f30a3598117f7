"""Deployment packages: validation of uploaded zips, safe extraction, deterministic zipping of directories.

Pure functions over bytes and paths (no registry, no asyncio). Limits are injectable so tests can use tiny ones.

Rules enforced (AWS wording where AWS has one):
- zipped size < 52,428,800 B -> 413 RequestEntityTooLargeException "Zipped size must be smaller than ... bytes"
- unzipped size (sum of entries) <= 262,144,000 B -> 400 InvalidParameterValueException
  "Unzipped size must be smaller than ... bytes"; the size is counted again while extracting, so a zip that
  lies about its sizes (zip bomb) is stopped as well
- unreadable / corrupt zip (bad central directory, bad CRC) -> 400 InvalidParameterValueException
  "Could not unzip uploaded file. Please check your file, then try to upload again."
- entries with absolute paths, drive letters or ``..`` components, symlinks whose target leaves the package,
  entries written through a chain of symlinks that leaves it, duplicate or clashing entries (a file where
  another entry needs a directory) and chains of more than 40 links are rejected with the same message plus
  the offending entry (AWS would extract them into its sandbox; we extract onto the host, so they are
  refused). Symlinks are resolved against the whole archive's layout, then the directory of every entry is
  checked again on disk before anything is written into it, and files are created with ``O_EXCL |
  O_NOFOLLOW``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import shutil
import stat
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from edge.invocation.errors import InvalidParameterValueException, RequestEntityTooLargeException
from edge.invocation.models import UNZIPPED_CODE_LIMIT, ZIPPED_CODE_LIMIT

__all__ = [
    "UNZIP_FAILED",
    "PackageInfo",
    "PackageLimits",
    "code_sha256",
    "extract_zip",
    "inspect_zip",
    "zip_directory",
    "zip_files",
]

UNZIP_FAILED = "Could not unzip uploaded file. Please check your file, then try to upload again."
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # earliest zip timestamp: same content -> same bytes -> same CodeSha256
_SKIP_DIRS = {"__pycache__", ".git"}
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True, slots=True)
class PackageLimits:
    zipped: int = ZIPPED_CODE_LIMIT
    unzipped: int = UNZIPPED_CODE_LIMIT


@dataclass(frozen=True, slots=True)
class PackageInfo:
    """What the registry records about one stored zip."""

    sha256_hex: str  # content address in the code store
    code_sha256: str  # AWS CodeSha256: base64 of the SHA-256 digest
    size: int  # zipped bytes (CodeSize)
    unzipped_size: int


def code_sha256(data: bytes) -> str:
    """AWS CodeSha256: base64 (not hex) of the SHA-256 digest of the zip bytes."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def _unsafe(detail: str) -> InvalidParameterValueException:
    return InvalidParameterValueException(f"{UNZIP_FAILED} ({detail})")


def _parts(name: str) -> tuple[str, ...]:
    """An entry name (or link target) split on either separator, without empty and ``.`` components."""
    return tuple(p for p in re.split(r"[\\/]", name) if p not in ("", "."))


def _check_entry_name(name: str) -> tuple[str, ...]:
    """The entry's path components; refuses absolute paths, drive letters and ``..`` components."""
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise _unsafe(f"absolute path in archive: {name!r}")
    parts = _parts(name)
    if ".." in parts:
        raise _unsafe(f"path escapes the package: {name!r}")
    if not parts:
        raise _unsafe(f"empty entry name: {name!r}")
    return parts


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


_MAX_LINK_HOPS = 40  # Linux's MAXSYMLINKS: deeper chains fail with ELOOP there, and are refused here


class _Layout:
    """What the package's entries describe once extracted: every path is a directory, a file or a symlink.

    Symlinks are resolved against this whole layout (not one by one, by their text, nor in archive order), so a
    chain such as ``s/l1 -> ..``, ``s/l2 -> l1/..``, ... is seen for what it is: a path above the package root.
    Every symlink target and every entry's parent directory must resolve inside the root.
    """

    def __init__(self) -> None:
        self.kinds: dict[tuple[str, ...], str] = {}  # "dir" | "file" | "link"
        self.links: dict[tuple[str, ...], tuple[str, ...]] = {}  # link path -> target components ("..": up)

    def add(self, info: zipfile.ZipInfo, parts: tuple[str, ...], link: str | None) -> None:
        kind = "link" if link is not None else ("dir" if info.is_dir() else "file")
        for i in range(1, len(parts)):
            self._claim(parts[:i], "dir", info.filename)
        if parts in self.kinds and not (kind == "dir" and self.kinds[parts] == "dir"):
            raise _unsafe(f"entry {info.filename!r} appears twice or clashes with another entry")
        self._claim(parts, kind, info.filename)
        if link is not None:
            if link.startswith(("/", "\\")) or _DRIVE.match(link):
                raise _unsafe(f"symlink {info.filename!r} points outside the package")
            self.links[parts] = _parts(link)

    def _claim(self, path: tuple[str, ...], kind: str, entry: str) -> None:
        found = self.kinds.get(path)
        if found is None:
            self.kinds[path] = kind
        elif found != kind:
            raise _unsafe(f"entry {entry!r} needs {'/'.join(path)!r} as a {kind}, but the archive makes it a "
                          f"{'symlink' if found == 'link' else found}")

    def resolve(self, start: tuple[str, ...], rest: tuple[str, ...], what: str) -> tuple[str, ...]:
        """``start`` + ``rest`` with every symlink on the way followed; a path above the root, or a chain of more
        than 40 links, is refused naming ``what`` (the entry, or the symlink, being checked)."""
        done: list[str] = list(start)
        pending = list(reversed(rest))
        hops = 0
        while pending:
            part = pending.pop()
            if part == "..":
                if not done:
                    raise _unsafe(f"{what} {'points' if what.startswith('symlink') else 'resolves'} outside the "
                                  "package")
                done.pop()
                continue
            here = (*done, part)
            target = self.links.get(here)
            if target is None:
                done.append(part)
                continue
            hops += 1
            if hops > _MAX_LINK_HOPS:
                raise _unsafe(f"{what}: too many levels of symbolic links")
            pending.extend(reversed(target))  # relative to the link's own directory: ``done`` as it is
        return tuple(done)

    def check(self, names: dict[tuple[str, ...], str]) -> None:
        for parts, entry in names.items():
            # where it is written (its directory, links followed), then what a link points at
            self.resolve((), parts[:-1], f"entry {entry!r}")
            if parts in self.links:
                self.resolve(parts[:-1], self.links[parts], f"symlink {entry!r}")


def _layout(zf: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, tuple[str, ...], str | None]]:
    """Every entry with its path components and link target (None for files and directories), once the whole
    archive has been checked to extract inside its root (see :class:`_Layout`)."""
    layout = _Layout()
    entries = []
    names: dict[tuple[str, ...], str] = {}
    for info in zf.infolist():
        parts = _check_entry_name(info.filename)
        link = zf.read(info).decode("utf-8") if _is_symlink(info) else None
        layout.add(info, parts, link)
        names[parts] = info.filename
        entries.append((info, parts, link))
    layout.check(names)
    return entries


def inspect_zip(data: bytes, limits: PackageLimits = PackageLimits()) -> PackageInfo:
    """Validate a zip's size, structure and entry names; return its identity. Raises LambdaError subclasses."""
    if len(data) >= limits.zipped:
        raise RequestEntityTooLargeException(f"Zipped size must be smaller than {limits.zipped} bytes")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = [info for info, _, _ in _layout(zf)]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError) as exc:
        raise InvalidParameterValueException(UNZIP_FAILED) from exc
    unzipped = sum(i.file_size for i in infos)
    if unzipped > limits.unzipped:
        raise InvalidParameterValueException(f"Unzipped size must be smaller than {limits.unzipped} bytes")
    digest = hashlib.sha256(data).digest()
    return PackageInfo(
        sha256_hex=digest.hex(),
        code_sha256=base64.b64encode(digest).decode("ascii"),
        size=len(data),
        unzipped_size=unzipped,
    )


def extract_zip(data: bytes, dest: Path, limits: PackageLimits = PackageLimits()) -> int:
    """Extract a zip (already passed :func:`inspect_zip`) into the empty directory ``dest``.

    Returns the number of bytes written. Counts real bytes as it goes, so lying size headers cannot exceed the
    unzipped limit. Raises InvalidParameterValueException on corrupt data (bad CRC, truncated entries); the
    caller owns ``dest`` and removes it on failure.
    """
    written = 0
    root = os.path.realpath(dest)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info, parts, link in _layout(zf):
                target = dest.joinpath(*parts)
                try:
                    if info.is_dir() and link is None:
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    _inside(root, target.parent, info.filename)  # the layout check, confirmed on disk
                    if link is not None:
                        os.symlink(link, target)
                        continue
                    written = _copy_entry(zf, info, target, written, limits.unzipped)
                    _apply_mode(info, target)
                except OSError as exc:  # e.g. an entry whose directory is a file: refused, never a crash
                    raise _unsafe(f"entry {info.filename!r} cannot be extracted: {exc.strerror or exc}") from None
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, UnicodeDecodeError) as exc:
        raise InvalidParameterValueException(UNZIP_FAILED) from exc
    return written


def _inside(root: str, directory: Path, entry: str) -> None:
    real = os.path.realpath(directory)
    if real != root and not real.startswith(root + os.sep):
        raise _unsafe(f"entry {entry!r} resolves outside the package")


def _copy_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, written: int, limit: int) -> int:
    """Copy one entry, returning the running total of bytes written; stops as soon as ``limit`` is passed."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)  # never through a link
    with zf.open(info) as src, open(fd, "wb") as dst:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > limit:
                raise InvalidParameterValueException(f"Unzipped size must be smaller than {limit} bytes")
            dst.write(chunk)
    return written


def _apply_mode(info: zipfile.ZipInfo, target: Path) -> None:
    """Read-only files; keep the executable bit when the archive says so (bootstrap scripts, binaries)."""
    mode = (info.external_attr >> 16) & 0o777
    os.chmod(target, 0o555 if mode & 0o111 else 0o444)


def make_read_only(root: Path) -> None:
    """Drop write permission on every directory below ``root`` (files are already read-only)."""
    for dirpath, _dirs, _files in os.walk(root):
        os.chmod(dirpath, 0o555)


def remove_tree(root: Path) -> None:
    """Remove a (possibly read-only) extracted tree."""

    def _writable_retry(func: Callable[[str], object], path: str, _exc: object) -> None:
        os.chmod(os.path.dirname(path), 0o755)
        func(path)

    for dirpath, _dirs, _files in os.walk(root):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(root, onerror=_writable_retry)


def zip_directory(root: Path) -> bytes:
    """Zip a directory deterministically: sorted entries, fixed timestamps, normalised modes.

    ``__pycache__`` and ``.git`` are skipped; symlinked files are stored as their content. The same tree always
    gives the same bytes, hence the same CodeSha256 (so re-deploying unchanged code publishes no new version).
    """
    if not root.is_dir():
        raise InvalidParameterValueException(f"Code directory does not exist or is not a directory: {root}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in _walk_files(root):
            rel = path.relative_to(root).as_posix()
            info = zipfile.ZipInfo(rel, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            executable = os.access(path, os.X_OK)
            info.external_attr = ((0o100755 if executable else 0o100644) & 0xFFFF) << 16
            info.create_system = 3  # unix, so external_attr modes are honoured
            zf.writestr(info, path.read_bytes())
    return buf.getvalue()


def zip_files(files: Mapping[str, str | bytes]) -> bytes:
    """A deterministic zip of ``{path: content}`` entries (fixed timestamps, 0644), e.g. for inline code."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            content = files[name]
            zf.writestr(info, content.encode("utf-8") if isinstance(content, str) else content)
    return buf.getvalue()


def _walk_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        found.extend(Path(dirpath) / f for f in filenames if not f.endswith(".pyc"))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())
