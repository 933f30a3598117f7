"""``edgelab logs NAME --follow`` stops on Ctrl+C (SIGINT) with status 0, whether it is sleeping between polls or
waiting on the API: a real process against a real (slow) HTTP server on 127.0.0.1. (A suite started as a
background job of a non-interactive shell has SIGINT ignored, inherited by every process it starts: that is why
test_dev_loop's follower could outlive its SIGINT on the fresh clones, and why this test restores the default.)"""

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
    # as from a terminal: SIGINT at its default even when this test runs under a shell's background job, which
    # starts with SIGINT ignored (and so would every process it starts)
    argv = ["edgelab", "logs", "f", "--follow", "--api", f"http://127.0.0.1:{server.server_address[1]}"]
    launcher = ("import runpy, signal, sys\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
                f"sys.argv = {argv!r}\nrunpy.run_module('edge.control.cli.main', run_name='__main__')\n")
    proc = subprocess.Popen([sys.executable, "-c", launcher], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while len(calls) < 2 and time.monotonic() < deadline:  # it has polled at least once after the first query
            time.sleep(0.05)
        assert len(calls) >= 2
        state = _signal_state(proc.pid) + " | test process: " + _signal_state(0)
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running 10 s after SIGINT; signal state: {state}") from None
        assert code == 0 and time.monotonic() - started < 5, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.shutdown()
        server.server_close()


def _signal_state(pid: int) -> str:
    """The SigBlk/SigIgn/SigCgt lines of ``pid``'s /proc status (0: this thread), for a failure message."""
    path = f"/proc/{pid}/status" if pid else "/proc/thread-self/status"
    with open(path) as f:
        return " ".join(line.strip() for line in f if line.startswith(("SigBlk", "SigIgn", "SigCgt")))
