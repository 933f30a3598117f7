"""The demo origin: an aiohttp app with deliberate, documented cache semantics.

Routes (every response carries ``X-Origin-Hit: <n>``, the per-path hit count including this one):

=============================  ===============================================================================
``GET /``                      ``index.html`` (also ``/index.html``), max-age=60
``GET /static/{path}``         files under ``origin/static``: max-age=3600, ETag, Last-Modified, 304 support
``GET /cache/max-age/{s}``     ``Cache-Control: max-age=s``
``GET /cache/s-maxage/{s}``    ``Cache-Control: max-age=0, s-maxage=s``
``GET /cache/etag``            max-age=5 + strong ETag (``?v=`` changes it); 304 on If-None-Match
``GET /cache/last-modified``   max-age=5 + Last-Modified; 304 on If-Modified-Since
``GET /cache/swr``             ``max-age=2, stale-while-revalidate=30, stale-if-error=60``
``GET /cache/{private,no-store,no-cache}``  the directive of that name
``GET /cache/expires/{s}``     ``Expires`` s seconds ahead, no Cache-Control
``GET /vary/lang``             body depends on Accept-Language; ``Vary: Accept-Language``
``GET /slow?delay=s``          answers after s seconds (max 60)
``* /status/{code}``           that status (100 < code < 600), ``?cc=`` sets Cache-Control
``GET /cookie``                ``Set-Cookie: session=...`` and max-age=60
``GET /large?size=n``          n bytes (default 2 MiB, max 256 MiB), streamed in 64 KiB chunks with Content-Length
``* /echo{tail}``              JSON: method, path, query, headers (ordered pairs), body, remote
``GET /api/time``              JSON time + counter (dynamic)
``GET /__hits``                JSON {path: hits}; ``POST /__hits/reset`` clears it; ``GET /__health`` liveness
=============================  ===============================================================================
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

from aiohttp import web

HITS = web.AppKey("origin_hits", Counter)
STATIC = web.AppKey("origin_static", dict)
STARTED = web.AppKey("origin_started", float)

STATIC_DIR = Path(__file__).with_name("static")
_TYPES = {".html": "text/html", ".css": "text/css", ".svg": "image/svg+xml", ".js": "application/javascript",
          ".json": "application/json", ".txt": "text/plain"}
_BOOT_HTTP_DATE = formatdate(usegmt=True)


@web.middleware
async def count_hits(request: web.Request, handler):  # type: ignore[no-untyped-def]
    """Count every request per path (except the counter endpoints) and expose the count."""
    if request.path.startswith(("/__hits", "/__health")):
        return await handler(request)
    hits = request.app[HITS]
    hits[request.path] += 1
    n = hits[request.path]
    resp = await handler(request)
    resp.headers["X-Origin-Hit"] = str(n)
    return resp


def _load_static(root: Path) -> dict[str, tuple[bytes, str, str, str]]:
    """path -> (content, content type, etag, last-modified) for every file under ``root``."""
    files: dict[str, tuple[bytes, str, str, str]] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            etag = '"' + hashlib.sha1(data).hexdigest()[:20] + '"'
            files[p.relative_to(root).as_posix()] = (data, _TYPES.get(p.suffix, "application/octet-stream"), etag,
                                                     formatdate(p.stat().st_mtime, usegmt=True))
    return files


def _not_modified(request: web.Request, etag: str | None, last_modified: str | None) -> bool:
    """RFC 9110 §13.1.2 / §13.1.3: If-None-Match wins over If-Modified-Since."""
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        return etag is not None and (inm.strip() == "*" or etag in [t.strip() for t in inm.split(",")])
    ims = request.headers.get("If-Modified-Since")
    if ims and last_modified:
        try:
            return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
    return False


def _cached(body: bytes | str, cc: str | None, *, content_type: str = "text/plain", **extra: str) -> web.Response:
    headers = {"Cache-Control": cc} if cc else {}
    headers.update(extra)
    data = body.encode() if isinstance(body, str) else body
    return web.Response(body=data, content_type=content_type, headers=headers)


async def index(request: web.Request) -> web.Response:
    data, ctype, etag, lm = request.app[STATIC]["index.html"]
    return _cached(data, "max-age=60", content_type=ctype, ETag=etag, **{"Last-Modified": lm})


async def static(request: web.Request) -> web.Response:
    entry = request.app[STATIC].get(request.match_info["path"])
    if entry is None:
        return web.Response(status=404, text="no such static file\n")
    data, ctype, etag, lm = entry
    headers = {"Cache-Control": "max-age=3600", "ETag": etag, "Last-Modified": lm}
    if _not_modified(request, etag, lm):
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, content_type=ctype, headers=headers)


def _seconds(request: web.Request, key: str = "s", *, default: int | None = None) -> int:
    raw = request.match_info.get(key) or request.query.get(key)
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        value = None
    if value is None or value < 0:
        raise web.HTTPBadRequest(text=f"{key} must be a non-negative integer\n")
    return value


async def max_age(request: web.Request) -> web.Response:
    s = _seconds(request)
    return _cached(f"max-age={s} at {time.time():.3f}\n", f"max-age={s}")


async def s_maxage(request: web.Request) -> web.Response:
    s = _seconds(request)
    return _cached(f"s-maxage={s} at {time.time():.3f}\n", f"max-age=0, s-maxage={s}")


async def expires(request: web.Request) -> web.Response:
    s = _seconds(request)
    return _cached(f"expires in {s}s\n", None, Expires=formatdate(time.time() + s, usegmt=True))


async def etag(request: web.Request) -> web.Response:
    tag = '"v-' + request.query.get("v", "1") + '"'
    if _not_modified(request, tag, None):
        return web.Response(status=304, headers={"ETag": tag, "Cache-Control": "max-age=5"})
    return _cached(f"etag {tag}\n", "max-age=5", ETag=tag)


async def last_modified(request: web.Request) -> web.Response:
    if _not_modified(request, None, _BOOT_HTTP_DATE):
        return web.Response(status=304, headers={"Last-Modified": _BOOT_HTTP_DATE, "Cache-Control": "max-age=5"})
    return _cached("last-modified\n", "max-age=5", **{"Last-Modified": _BOOT_HTTP_DATE})


async def swr(request: web.Request) -> web.Response:
    return _cached(f"swr at {time.time():.3f}\n", "max-age=2, stale-while-revalidate=30, stale-if-error=60")


async def directive(request: web.Request) -> web.Response:
    name = request.match_info["directive"]
    return _cached(f"{name} at {time.time():.3f}\n", name)


async def vary_lang(request: web.Request) -> web.Response:
    lang = request.headers.get("Accept-Language", "en").split(",")[0].strip().lower()
    hello = {"de": "Hallo", "fr": "Bonjour", "ja": "Konnichiwa"}.get(lang[:2], "Hello")
    return _cached(f"{hello}\n", "max-age=60", Vary="Accept-Language", **{"Content-Language": lang or "en"})


async def slow(request: web.Request) -> web.Response:
    try:
        delay = float(request.query.get("delay", "1"))
    except ValueError:
        raise web.HTTPBadRequest(text="delay must be a number\n") from None
    if not 0 <= delay <= 60:
        raise web.HTTPBadRequest(text="delay must be within [0, 60]\n")
    await asyncio.sleep(delay)
    return _cached(f"slept {delay}s\n", request.query.get("cc", "max-age=10"))


async def status(request: web.Request) -> web.Response:
    try:
        code = int(request.match_info["code"])
    except ValueError:
        raise web.HTTPBadRequest(text="status must be an integer\n") from None
    if not 200 <= code <= 599:
        raise web.HTTPBadRequest(text="status must be within [200, 599]\n")
    cc = request.query.get("cc")
    body = b"" if code in (204, 304) else f"status {code}\n".encode()
    return web.Response(status=code, body=body, headers={"Cache-Control": cc} if cc else {})


async def cookie(request: web.Request) -> web.Response:
    resp = _cached("cookie set\n", "max-age=60")
    resp.set_cookie("session", hashlib.sha1(str(time.time()).encode()).hexdigest()[:16], httponly=True)
    return resp


async def large(request: web.Request) -> web.StreamResponse:
    size = _seconds(request, "size", default=2 * 1024 * 1024)
    if size > 256 * 1024 * 1024:
        raise web.HTTPBadRequest(text="size must be <= 256 MiB\n")
    resp = web.StreamResponse(headers={"Cache-Control": "max-age=300", "Content-Type": "application/octet-stream"})
    resp.content_length = size
    await resp.prepare(request)
    chunk = bytes(range(256)) * 256  # 64 KiB, a recognisable pattern
    left = size
    while left > 0:
        n = min(left, len(chunk))
        await resp.write(chunk[:n])
        left -= n
    await resp.write_eof()
    return resp


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    payload = {
        "method": request.method,
        "path": request.raw_path.split("?", 1)[0],
        "query": request.query_string,
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.raw_headers],
        "body": body.decode("utf-8", errors="replace"),
        "remote": request.remote,
    }
    return web.json_response(payload, headers={"Cache-Control": request.query.get("cc", "no-store")})


async def api_time(request: web.Request) -> web.Response:
    hits = request.app[HITS][request.path]
    return web.json_response({"time": time.time(), "hits": hits, "uptime": time.monotonic() - request.app[STARTED]})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def hits_get(request: web.Request) -> web.Response:
    return web.json_response(dict(request.app[HITS]))


async def hits_reset(request: web.Request) -> web.Response:
    request.app[HITS].clear()
    return web.json_response({"reset": True})


def make_app(*, static_dir: Path = STATIC_DIR) -> web.Application:
    """Build the demo origin app (static files are loaded at startup, off the event loop)."""
    app = web.Application(middlewares=[count_hits])
    app[HITS] = Counter()
    app[STARTED] = time.monotonic()
    app[STATIC] = {}

    async def load(app: web.Application):  # type: ignore[no-untyped-def]
        app[STATIC] = await asyncio.to_thread(_load_static, static_dir)
        yield

    app.cleanup_ctx.append(load)
    r = app.router
    r.add_get("/", index)
    r.add_get("/index.html", index)
    r.add_get("/static/{path:.+}", static)
    r.add_get("/cache/max-age/{s}", max_age)
    r.add_get("/cache/s-maxage/{s}", s_maxage)
    r.add_get("/cache/expires/{s}", expires)
    r.add_get("/cache/etag", etag)
    r.add_get("/cache/last-modified", last_modified)
    r.add_get("/cache/swr", swr)
    r.add_get("/cache/{directive:private|no-store|no-cache}", directive)
    r.add_get("/vary/lang", vary_lang)
    r.add_get("/slow", slow)
    r.add_route("*", "/status/{code}", status)
    r.add_get("/cookie", cookie)
    r.add_get("/large", large)
    r.add_route("*", "/echo", echo)
    r.add_route("*", "/echo/{tail:.*}", echo)
    r.add_get("/api/time", api_time)
    r.add_get("/__health", health)
    r.add_get("/__hits", hits_get)
    r.add_post("/__hits/reset", hits_reset)
    return app
