"""What the stack tests' small ``http.server`` origins share: a text answer with a Content-Length and, by default, a
Cache-Control that makes it cacheable."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler


def send_text(handler: BaseHTTPRequestHandler, body: bytes, *, cache_control: str | None = "max-age=300",
              status: int = 200) -> None:
    """Answer ``handler``'s request with ``body`` as text/plain."""
    handler.send_response(status)
    handler.send_header("Content-Type", "text/plain")
    if cache_control is not None:
        handler.send_header("Cache-Control", cache_control)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
