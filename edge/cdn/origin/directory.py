"""S3 origins served from a local directory (settings ``[origins] "bucket.s3.amazonaws.com" = "dir:PATH"``).

``fetch_from_directory(directory, request, stream_threshold, started)`` answers an origin request like S3 would
(``edge.cdn.origin.client`` calls it for origins mapped to a directory). File I/O goes through threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import time
from collections.abc import AsyncGenerator
from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote

from edge.cdn.models import BodyStream, EdgeRequest, EdgeResponse, ResponseMeta, S3Origin

__all__ = ["fetch_from_directory"]


def _s3_error(status: int, code: str, message: str, key: str) -> EdgeResponse:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<Key>{key}</Key></Error>").encode()
    return EdgeResponse(status=status, headers=[("Content-Type", "application/xml"), ("Server", "AmazonS3")],
                        body=body)


def _locate(directory: Path, key: str) -> tuple[Path, Path]:
    """(resolved root, resolved object path): resolving touches the file system (symlinks)."""
    root = directory.resolve()
    return root, (root / unquote(key)).resolve()


def _stat_and_read(path: Path, limit: int) -> tuple[int, float, bytes | None]:
    st = path.stat()
    return st.st_size, st.st_mtime, path.read_bytes() if st.st_size <= limit else None


async def _file_chunks(path: Path, chunk: int = 1 << 20) -> AsyncGenerator[bytes, None]:
    with path.open("rb") as f:  # every read goes through a thread
        while data := await asyncio.to_thread(f.read, chunk):
            yield data


async def fetch_from_directory(directory: Path, request: EdgeRequest, stream_threshold: int,
                               started: float) -> EdgeResponse:
    """Answer like S3 for the object ``origin.path + uri`` under ``directory``: 200 with ETag/Last-Modified,
    304 on a matching If-None-Match, 404 NoSuchKey (403 AccessDenied for OAI-protected origins, as S3 answers
    without ListBucket), 405 for methods other than GET/HEAD. Paths cannot escape ``directory``."""
    origin = request.origin
    prefix = origin.path if origin is not None else ""
    key = (prefix + request.uri).lstrip("/")
    if request.method not in ("GET", "HEAD"):
        return _s3_error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.", key)
    root, path = await asyncio.to_thread(_locate, directory, key)
    private = isinstance(origin, S3Origin) and origin.auth_method == "origin-access-identity"
    if not path.is_relative_to(root) or not await asyncio.to_thread(path.is_file):
        if private:
            return _s3_error(403, "AccessDenied", "Access Denied", key)
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.", key)
    size, mtime, data = await asyncio.to_thread(_stat_and_read, path, stream_threshold)
    etag = '"' + hashlib.md5(f"{size}:{mtime}".encode(), usedforsecurity=False).hexdigest() + '"'
    headers = [("Last-Modified", formatdate(mtime, usegmt=True)), ("ETag", etag), ("Accept-Ranges", "bytes"),
               ("Content-Type", mimetypes.guess_type(path.name)[0] or "binary/octet-stream"), ("Server", "AmazonS3")]
    meta = ResponseMeta(origin_seconds=time.perf_counter() - started, content_length=size)
    inm = next((v for k, v in request.headers if k.lower() == "if-none-match"), None)
    if inm is not None and etag in [t.strip() for t in inm.split(",")]:
        return EdgeResponse(status=304, headers=headers, body=b"", meta=meta)
    if request.method == "HEAD":
        return EdgeResponse(status=200, headers=headers, body=b"", meta=meta)
    body: bytes | BodyStream = data if data is not None else _file_chunks(path)
    meta.streamed = data is None
    return EdgeResponse(status=200, headers=headers, body=body, meta=meta)
