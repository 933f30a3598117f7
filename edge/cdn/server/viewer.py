"""The POP's viewer-facing HTTP/1.x protocol: requests parsed by llhttp (``httptools``) straight off the event
loop's transport, answered in order, each by the POP's :class:`ViewerApp`.

Why its own protocol (issue 20): aiohttp's server costs ~30 us of CPU per request on this machine before the POP
does anything (a ``BaseRequest``, its multidict of headers, a payload stream, the handler's awaits); a cache hit
of the POP costs less than that. Here a request is a few strings, and a fresh cache hit is answered synchronously
from ``data_received`` (``pipeline.begin``): no task, no future, one ``transport.write``; so is a hit behind a warm
viewer-request function, from the worker channel's ``data_received`` when its answer comes (the app returns None
and calls :meth:`ViewerProtocol.answered` then). Everything else (misses, cold functions, bodies, streaming) runs as
one task per request owned by the POP's ``TaskOwner``.

What the protocol keeps (from aiohttp's, which the tests pinned):

* Parsing is llhttp without its "dangerous leniencies" (the same parser aiohttp uses, with the same strictness):
  conflicting Content-Length / Transfer-Encoding, a Transfer-Encoding whose last coding is not chunked, bad chunk
  sizes, obs-fold, bare CR: a parse error, answered by :meth:`ViewerApp.refuse` (CloudFront's 400 page) and the
  connection closed; nothing after a malformed request is ever parsed (no request smuggling).
* CloudFront's size limits: a URL over :data:`MAX_URL_BYTES` or request headers over :data:`MAX_HEADER_BYTES`
  (or more than :data:`MAX_HEADERS` of them) stop the parser at once (nothing more is buffered) and get 413.
* Pipelining: requests are answered in the order they came; at most :data:`MAX_QUEUED` wait behind the one being
  answered before the protocol stops reading, and it stops reading while the viewer does not read its responses
  (``pause_writing``).
* ``Expect``: ``100-continue`` gets its interim response when the request's turn comes (HTTP/1.1 only), any
  other expectation 417 (and a close).
* Keep-alive as llhttp reads it (HTTP/1.0 ``Connection: keep-alive``, HTTP/1.1 unless ``Connection: close``).
* Limits and timeouts: the connection is a ``limits.ViewerConnection``'s inner protocol (admission, header and
  keep-alive deadlines by the ``ConnectionGuard``); the guard sees the connection busy from a request's complete
  head until its response is written; a request body that pauses longer than the body timeout gets 408 (when its
  turn comes) and a close.
* Upgrades (``Upgrade`` + ``Connection: upgrade``, and CONNECT): llhttp stops at the request's head. The app may
  take the connection over (:meth:`hand_over`: a WebSocket relay continues in aiohttp's protocol, which gets the
  request's head re-serialised and every byte that followed); otherwise the request is answered as usual and the
  connection closed (bytes after an upgrade request are not HTTP).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

import httptools

from edge.cdn.errors import EdgeError, RequestTooLarge
from edge.cdn.server.limits import RequestTimeout, ViewerConnection

if TYPE_CHECKING:
    from edge.cdn.origin.http1 import Head
    from edge.cdn.server.limits import ConnectionGuard
    from edge.tasks import TaskOwner

__all__ = ["MAX_HEADERS", "MAX_HEADER_BYTES", "MAX_URL_BYTES", "ViewerApp", "ViewerProtocol", "ViewerRequest"]

log = logging.getLogger("edgelab.pop")

MAX_URL_BYTES = 8192  # CloudFront: maximum length of a URL
MAX_HEADER_BYTES = 20480  # CloudFront: maximum total length of request headers (name + value + 4 per line)
MAX_HEADERS = 1024  # beyond CloudFront's byte limit in practice: a flood of empty headers is refused too
MAX_QUEUED = 32  # pipelined requests parsed ahead of the one being answered before reading stops
MAX_REMEMBERED_BYTES = 2048  # the longest read a connection keeps to compare the next one with (reads parsed before)
MAX_UPGRADE_BUFFER = 1 << 20  # bytes after an upgrade request kept until the app takes the connection over
LINGER_S = 2.0  # reading and dropping a closed connection's input (``_close``)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_VERSIONS = {"1.1": (1, 1), "1.0": (1, 0), "0.9": (0, 9), "2.0": (2, 0)}
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}


class ExpectationFailed(EdgeError):
    """An ``Expect`` other than ``100-continue`` (RFC 9110 §10.1.1): 417, as aiohttp's router answered it."""

    status = 417
    message = "Expectation Failed"
    x_cache = "Error from cloudfront"


class ViewerRequest:
    """One parsed request: strings decoded as aiohttp decodes them (UTF-8, undecodable bytes kept as surrogates),
    header names in their original case."""

    __slots__ = ("body", "body_size", "complete", "continued", "expect", "headers", "keep_alive", "kept", "method",
                 "refusal", "repeat", "rest", "target", "upgrade", "version")

    def __init__(self) -> None:
        self.method = "GET"
        self.target = ""
        self.version: tuple[int, int] = (1, 1)
        self.headers: list[tuple[str, str]] = []
        self.keep_alive = True
        self.upgrade = False
        self.expect: str | None = None
        self.continued = False
        self.body: list[bytes] | None = None
        self.body_size = 0
        self.complete = False
        self.refusal: EdgeError | None = None  # answered with CloudFront's error page, then the connection closes
        self.rest: bytearray | None = None  # an upgrade request: the bytes that followed its head
        self.repeat = False  # replayed from a read seen before: the app may keep its answer (``kept``)
        self.kept: object = None  # set by the app: its answer, to be given again for the same read (ViewerApp.again)

    def head_bytes(self) -> bytes:
        """The request's head re-serialised (for a protocol taking the connection over)."""
        lines = [f"{self.method} {self.target} HTTP/{self.version[0]}.{self.version[1]}"]
        lines.extend(f"{k}: {v}" for k, v in self.headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


# A request whose head llhttp parsed from one read, alone, from a message boundary to the next, with no body, no
# Expect, no upgrade and no refusal: (method, target, version, headers, keep-alive), see ViewerProtocol.data_received
ParsedHead = tuple[str, str, tuple[int, int], tuple[tuple[str, str], ...], bool]


class ViewerApp(Protocol):
    """What answers a :class:`ViewerProtocol`'s requests (the POP: ``edge.cdn.server.pop``)."""

    guard: ConnectionGuard
    handlers: TaskOwner
    body_timeout: float
    max_body: int

    def respond(self, conn: ViewerProtocol, req: ViewerRequest) -> bool | Coroutine[Any, Any, None] | None:
        """Answer ``req`` on ``conn`` (``conn.write``): the keep-alive verdict when done synchronously, else a
        coroutine (run as a task) that answers it, then gives the verdict to ``conn.answered`` (or calls
        ``conn.abort``: it raises nothing but cancellation), or None when the app answers later by itself, from a
        callback of its own (the same ``conn.answered`` or ``conn.abort``; never from inside ``respond``). False
        closes the connection; after ``conn.hand_over`` the verdict is not looked at."""
        ...

    def parse_error(self, conn: ViewerProtocol, exc: Exception) -> EdgeError:
        """The refusal for a request llhttp could not parse (logged by the app)."""
        ...

    def again(self, conn: ViewerProtocol, kept: Any) -> bytes | None:
        """The same read as the request whose answer the app kept (``ViewerRequest.kept``, set while answering a
        ``repeat`` request at once and keeping the connection alive) came again, nothing in front of it: the
        answer's bytes, counted as answering the request would count them (the protocol writes them and goes on
        with the connection kept alive), or None, with nothing done (the protocol forgets ``kept`` and hands the
        request to :meth:`respond`)."""
        ...


class ViewerProtocol(asyncio.Protocol):
    """One viewer connection's HTTP/1.x (see the module docstring)."""

    __slots__ = ("app", "at_rest", "body_started", "body_timer", "busy", "closing", "conn", "cur", "eof", "guard",
                 "handed_over", "head_size", "last", "last_head", "outer", "parsed", "parser", "peer", "queue", "reading",
                 "receiving_body", "seen_answer", "seen_head", "seen_read", "transport", "url", "wanted", "write_paused",
                 "write_waiter")

    def __init__(self, app: ViewerApp) -> None:
        self.app = app
        self.guard = app.guard
        self.seen_read = b""  # the last read that started at a message boundary (reads parsed before)
        self.seen_head: ParsedHead | None = None  # what it parsed to, once it was seen twice and held one request
        self.seen_answer: object = None  # the app's answer to that request, kept (ViewerApp.again)
        self.wanted = False  # the current read is seen_read again: its head is to be remembered (on_message_complete)
        self.at_rest = True  # the parser is between messages (none begun, or the last one complete)
        self.parsed = 0  # messages llhttp completed during the current read
        self.last_head: ParsedHead | None = None  # the last of them, when it can be remembered
        self.outer: ViewerConnection | None = None  # the guard's wrapper (set by the factory)
        self.transport: asyncio.Transport | None = None
        self.parser: httptools.HttpRequestParser | None = None
        self.peer: tuple[str, int] = ("127.0.0.1", 0)
        self.queue: collections.deque[ViewerRequest] = collections.deque()
        self.cur = ViewerRequest()
        self.url = b""
        self.head_size = 0
        self.busy = False
        self.last = False
        self.closing = False
        self.eof = False
        self.reading = True
        self.handed_over = False
        self.conn: ViewerConnection | None = None  # the guard's record while a request is being answered
        self.receiving_body = False
        self.body_started = 0.0
        self.body_timer: asyncio.TimerHandle | None = None
        self.write_paused = False
        self.write_waiter: asyncio.Future[None] | None = None

    # --- transport callbacks ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport's
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.peer = (peer[0], peer[1])
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None:
            rest = self.cur.rest
            if rest is not None and not self.closing:  # after an upgrade request: kept for the protocol taking over
                rest += data
                if len(rest) > MAX_UPGRADE_BUFFER:
                    self.abort()
            return
        at_rest = self.at_rest
        if at_rest:
            if data == self.seen_read:
                head = self.seen_head
                if head is not None:  # parsed before: the same request, without llhttp's callbacks
                    self._replay(head)
                    return
                self.wanted = True
            else:
                self.seen_read = data if len(data) <= MAX_REMEMBERED_BYTES else b""
                self.seen_head = self.seen_answer = None
                self.wanted = False
        else:
            self.wanted = False
        self.parsed = 0
        self.last_head = None
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgraded(data[int(upgrade.args[0]):])
        except httptools.HttpParserError as exc:
            self._malformed(exc)
        else:
            if not self.parsed:  # no message completed (CR/LF only, or part of one): not at rest until one is
                self.at_rest = False
            elif self.wanted and self.parsed == 1 and self.at_rest and self.parser is parser:
                self.seen_head = self.last_head  # (None when the request cannot be replayed)
        if self.receiving_body and self.body_timer is None and not self.closing:
            self.body_started = time.monotonic()
            self.body_timer = asyncio.get_running_loop().call_later(self.app.body_timeout, self._body_check)

    def eof_received(self) -> bool | None:
        if self.closing or (not self.busy and not self.queue):
            return None  # nothing to answer: the transport closes itself
        self.eof = True  # answer what was asked, then close
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.parser = None
        self.queue.clear()
        self._body_over()
        waiter, self.write_waiter = self.write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("viewer connection lost"))

    def pause_writing(self) -> None:
        self.write_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter, self.write_waiter = self.write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if len(self.queue) < MAX_QUEUED:
            self._resume_reading()

    # --- llhttp callbacks ---------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.at_rest = False
        self.cur = ViewerRequest()
        self.url = b""
        self.head_size = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > MAX_URL_BYTES:
            req = self.cur
            assert self.parser is not None
            req.method = self.parser.get_method().decode("ascii", "surrogateescape")  # a HEAD gets the head only
            req.refusal = RequestTooLarge(f"URL of more than {MAX_URL_BYTES} bytes")
            raise req.refusal

    def on_header(self, name: bytes, value: bytes) -> None:
        req = self.cur
        self.head_size += len(name) + len(value) + 4
        if self.head_size > MAX_HEADER_BYTES or len(req.headers) >= MAX_HEADERS:
            req.refusal = RequestTooLarge("request headers too large")
            raise req.refusal
        key = name.decode("utf-8", "surrogateescape")
        text = value.decode("utf-8", "surrogateescape")
        if len(name) == 6 and key.lower() == "expect":
            req.expect = text
        req.headers.append((key, text))

    def on_headers_complete(self) -> None:
        req = self.cur
        parser = self.parser
        assert parser is not None
        method = parser.get_method()
        req.method = _METHODS.get(method) or method.decode("ascii", "surrogateescape")
        version = parser.get_http_version()
        req.version = _VERSIONS.get(version) or (int(version[0]), int(version[2]))
        req.keep_alive = parser.should_keep_alive()
        req.upgrade = parser.should_upgrade()  # (llhttp completes the message before it stops at the upgrade)
        req.target = self.url.decode("utf-8", "surrogateescape")
        self._queued(req)
        self.receiving_body = True  # until on_message_complete: a body's first pause starts the body timer
        if req.expect is not None and not self.busy:
            self._next()

    def on_body(self, body: bytes) -> None:
        req = self.cur
        req.body_size += len(body)
        if req.body_size > self.app.max_body:
            req.refusal = RequestTooLarge(f"request body over {self.app.max_body} bytes")
            raise req.refusal
        if req.body is None:
            req.body = [body]
        else:
            req.body.append(body)
        self.body_started = time.monotonic()

    def on_message_complete(self) -> None:
        req = self.cur
        if req.upgrade:
            return  # llhttp stops right after: _upgraded completes it, with the bytes that followed its head
        # llhttp keeps one thing from a message to the next: after one that does not keep the connection alive,
        # anything but CR/LF is an error ("Data after `Connection: close`"), so only a keep-alive one leaves it at rest
        self.at_rest = req.keep_alive
        self.parsed += 1
        if self.wanted and req.body is None and req.expect is None and req.refusal is None:  # before the app sees it
            self.last_head = (req.method, req.target, req.version, tuple(req.headers), req.keep_alive)
        req.complete = True
        self._body_over()
        if not self.busy:
            self._next()

    # --- reads parsed before --------------------------------------------------------------------------------
    # A connection keeps its last read that started at a message boundary; when the same bytes come again and held
    # exactly one request (to the next boundary; no body, Expect, upgrade or refusal), what they parsed to is kept,
    # and from the third time on the request is replayed without llhttp: llhttp at a message boundary keeps no
    # state from the messages before (but the keep-alive rule of on_message_complete), so the same bytes at a
    # boundary parse to the same request. wrk, ab -k, locust and a browser polling one URL send the same head again
    # and again on a connection; llhttp's callbacks into Python cost ~17k instructions for a 3-header request,
    # ~20 % of a plain hit. Per connection, not per listener: one viewer's timing tells nothing about another's
    # requests, and what is kept is one read per connection.
    # A replayed request is marked ``repeat``; when the app answers it at once and the connection stays open, the app
    # may keep its answer (``ViewerRequest.kept``: the POP keeps a plain cache hit's, ``PopViewer.again``), and the
    # next time the same read comes to the idle connection, nothing waiting in front of it, the app is asked to give
    # that answer again before anything is made for the request (:meth:`answer_again`, the guard's wrapper calls it
    # before it starts the header timeout: the connection idles on, from now, ``ConnectionGuard.rested``). When the
    # app declines (its answer would differ now) the kept answer is forgotten and the request replayed as above.
    def answer_again(self, data: bytes) -> bool:
        """``ViewerConnection.at_once``: the read ``data`` is the one whose request's answer the app kept
        (``seen_answer``), nothing is waiting in front of it, and the app gives that answer again (``ViewerApp.again``):
        written, True. False, with nothing done (the read goes to :meth:`data_received`), once any of that is not so;
        the kept answer is forgotten when the app declined it."""
        kept = self.seen_answer
        if kept is None or data != self.seen_read or self.busy or not self.at_rest or self.parser is None:
            return False
        answer = self.app.again(self, kept)
        if answer is None:
            self.seen_answer = None
            return False
        self.transport.write(answer)  # type: ignore[union-attr]  # (connected: a parser)
        return True

    def _replay(self, head: ParsedHead) -> None:
        """What llhttp's callbacks do for ``head`` read whole (on_message_begin to on_message_complete)."""
        req = ViewerRequest()
        req.method, req.target, req.version, headers, req.keep_alive = head
        req.headers = list(headers)  # the app's own copy
        req.complete = req.repeat = True
        self.cur = req
        self._queued(req)
        self._body_over()
        if not self.busy:
            self._next()
            if req.kept is not None and not self.busy and not self.closing:  # answered at once, kept alive
                self.seen_answer = req.kept

    def _queued(self, req: ViewerRequest) -> None:
        """A request's head is complete: it waits for its turn; the guard sees the connection busy."""
        self.queue.append(req)
        if self.conn is None:
            self.conn = self.guard.begin(self.transport)
        if len(self.queue) > MAX_QUEUED:
            self._pause_reading()

    def _body_over(self) -> None:
        """The current request's body is complete (or will never be read): its timer, if armed, goes with it; a
        later request's body is timed from its own start."""
        self.receiving_body = False
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None

    # --- answering in order -------------------------------------------------------------------------------
    def _next(self) -> None:
        """Answer queued requests, in order, until one has to wait (for its body, or for a task)."""
        queue = self.queue
        while queue and not self.busy and not self.closing:
            req = queue[0]
            if req.refusal is None:
                if req.expect is not None and not req.continued:
                    req.continued = True
                    if req.version == (1, 1):
                        if req.expect.lower() == "100-continue":
                            if not req.complete:
                                self.write(CONTINUE)
                        else:
                            req.refusal = ExpectationFailed(f"Unknown Expect: {req.expect}")
                if not req.complete and req.refusal is None:
                    return  # its body is still arriving
            queue.popleft()
            if not self.reading and len(queue) < MAX_QUEUED // 4 and not self.write_paused:
                self._resume_reading()
            self.busy = True
            self.last = req.refusal is not None or req.upgrade  # no request after it is answered
            try:
                verdict = self.app.respond(self, req)
            except Exception:  # the app answers its own errors: this is a bug, the connection cannot go on
                log.exception("viewer request %s %s failed", req.method, req.target[:200])
                self.abort()
                return
            if self.handed_over or verdict is None:  # None: the app answers later by itself (answered, abort)
                return
            if not isinstance(verdict, bool):
                # the app's coroutine is the task itself (it ends with answered()): no wrapper coroutine whose
                # frame every wake-up of the request would go through
                if self.app.handlers.spawn(verdict, name="viewer", answers_errors=True) is None:
                    self.abort()  # the POP is stopping
                return
            if not self._done(verdict):
                return

    def answered(self, keep_alive: bool) -> None:
        """The app's task answered the request at the head of the line: go on with the next one (see respond)."""
        if self._done(keep_alive) and self.queue:
            self._next()

    def _done(self, keep_alive: bool) -> bool:
        """One response written: whether the connection goes on with the next request."""
        self.busy = False
        if self.closing:  # closed, or handed over
            return False
        if not keep_alive or self.last or (self.eof and not self.queue):
            self._close()
            return False
        if not self.queue and self.conn is not None:
            self.guard.end(self.conn)
            self.conn = None
        return True

    # --- for the app --------------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Send response bytes (nothing once the connection is closing)."""
        transport = self.transport
        if not self.closing and transport is not None:
            transport.write(data)

    async def drain(self) -> None:
        """Wait until the viewer has read enough of what was written (ConnectionResetError once it is gone)."""
        if self.closing:
            raise ConnectionResetError("viewer connection closed")
        if self.write_paused:
            if self.write_waiter is None:
                self.write_waiter = asyncio.get_running_loop().create_future()
            await self.write_waiter

    def hand_over(self, protocol: asyncio.Protocol, req: ViewerRequest) -> None:
        """Give the connection to ``protocol`` (from ``req``, an upgrade request, on): it sees the connection made,
        then ``req``'s head and every byte that followed it."""
        assert self.outer is not None and self.transport is not None
        self.handed_over = True
        self.closing = True  # nothing more from this protocol
        self._body_over()
        self.outer.inner = protocol
        self.outer.at_once = None
        protocol.connection_made(self.transport)
        protocol.data_received(req.head_bytes() + bytes(req.rest or b""))
        if not self.reading:
            self.reading = True
            self.transport.resume_reading()

    async def interim(self, head: Head) -> None:
        """Send an origin's interim response (1xx) ahead of the final one (the pipeline's ``InterimSink``: only
        built for HTTP/1.1 viewers). A viewer gone meanwhile is not the origin's failure: the final write notices."""
        lines = [f"HTTP/1.1 {head.status} {head.reason}".rstrip()]
        lines.extend(f"{k}: {v}" for k, v in head.headers)
        self.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
        with contextlib.suppress(ConnectionError):
            await self.drain()

    @property
    def client_ip(self) -> str:
        return self.peer[0]

    # --- internals ----------------------------------------------------------------------------------------
    def _upgraded(self, rest: bytes) -> None:
        """llhttp stopped after an upgrade request's head (see the module docstring)."""
        self.parser = None  # nothing after it is HTTP
        req = self.cur
        req.complete = True
        req.rest = bytearray(rest)
        self._body_over()
        if not self.busy:
            self._next()

    def _malformed(self, exc: Exception) -> None:
        """A parse error: the refusal goes out after the answers to the requests before it, then a close."""
        self.parser = None
        self._body_over()
        req = self.cur
        refusal = req.refusal or self.app.parse_error(self, exc)
        if self.queue and self.queue[-1] is req:  # its head was complete: its body was malformed
            req.refusal, req.complete = refusal, True
        else:
            bad = ViewerRequest()
            bad.refusal, bad.complete, bad.method = refusal, True, req.method if req.refusal else "GET"
            self._queued(bad)
        self._pause_reading()
        if not self.busy:
            self._next()

    def _body_check(self) -> None:
        self.body_timer = None
        if not self.receiving_body or self.closing:
            return
        timeout = self.app.body_timeout
        idle = time.monotonic() - self.body_started
        if idle < timeout:
            self.body_timer = asyncio.get_running_loop().call_later(timeout - idle, self._body_check)
            return
        req = self.cur
        self.parser = None
        self.receiving_body = False
        self.guard.counters.body_timeouts += 1
        req.refusal = RequestTimeout(f"no request body bytes for {timeout:g} s after {req.body_size} bytes")
        req.complete = True
        self._pause_reading()
        if not self.busy:
            self._next()

    def _pause_reading(self) -> None:
        if self.reading and not self.closing and self.transport is not None:
            self.reading = False
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if not self.reading and not self.closing and self.parser is not None and self.transport is not None:
            self.reading = True
            self.transport.resume_reading()

    def _close(self) -> None:
        """Close after the last response: the write side first (the viewer reads everything sent, then EOF), input
        still arriving is read and dropped for at most :data:`LINGER_S` (a viewer still sending, e.g. an over-long
        request, would otherwise get a reset that can destroy the response before it reads it), then the close."""
        self.closing = True
        self.parser = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.eof or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self.cur.rest = None
        if not self.reading:
            self.reading = True
            transport.resume_reading()
        asyncio.get_running_loop().call_later(LINGER_S, transport.abort if transport.get_write_buffer_size()
                                              else transport.close)

    def abort(self) -> None:
        """Drop the connection at once (a streamed body that broke: the only honest signal left)."""
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


def viewer_connection(app: ViewerApp) -> ViewerConnection:
    """The protocol factory of a POP listener: a :class:`ViewerProtocol` under the app's connection guard."""
    inner = ViewerProtocol(app)
    outer = ViewerConnection(inner, app.guard)
    inner.outer = outer
    outer.at_once = inner.answer_again
    return outer
