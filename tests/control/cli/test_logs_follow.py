"""``edgelab logs NAME --follow`` stops on Ctrl+C (SIGINT) with status 0, whether it is sleeping between polls or
waiting on the API: a real process against a real (slow) HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.control.stack.test_serve import REPO


@pytest.mark.parametrize("delay", [0.0, 30.0], ids=["sleeping-between-polls", "waiting-on-the-api"])
def test_ctrl_c_stops_follow(delay: float) -> None:
    calls: list[float] = []

    class Api(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            calls.append(time.monotonic())
            if len(calls) > 1:
                time.sleep(delay)  # the polls after the first one hang (a slow API)
            body = json.dumps({"events": [], "groups": ["/aws/lambda/f"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proc = subprocess.Popen([sys.executable, "-m", "edge.control.cli.main", "logs", "f", "--follow", "--api",
                             f"http://127.0.0.1:{server.server_address[1]}"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while len(calls) < 2 and time.monotonic() < deadline:  # it has polled at least once after the first query
            time.sleep(0.05)
        assert len(calls) >= 2
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        code = proc.wait(timeout=10)
        assert code == 0 and time.monotonic() - started < 5, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.shutdown()
        server.server_close()
