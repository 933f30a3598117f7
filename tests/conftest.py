"""Shared, generic fixtures: zip building and a Lambda API server on a real loopback socket.

``lambda_api`` runs a LambdaService + the Lambda REST app in a background thread with its own event loop, so
synchronous clients (boto3, awscli) can be used directly from plain tests. Port 0: tests run in parallel.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# every `edgelab serve` a test starts stops when its test process dies, even by SIGKILL (a timed-out or killed run
# used to leave whole stacks running under PID 1)
os.environ["EDGELAB_EXIT_WITH_PARENT"] = "1"


@pytest.fixture
def make_zip() -> Callable[[dict[str, str | bytes]], bytes]:
    """Build a zip from ``{path: content}`` (deterministic; see edge.invocation.registry.packages.zip_files)."""
    from edge.invocation.registry.packages import zip_files

    return zip_files


class LambdaApiServer:
    """LambdaService + make_lambda_api_app served on 127.0.0.1:<free port> from a background thread."""

    def __init__(self, state_dir: Path, executor_factory: Callable[[], Any] | None = None,
                 extend: Callable[[Any, Any], None] | None = None, auth_keys: dict[str, str] | None = None,
                 **service_kwargs: Any) -> None:
        """``extend(app, service)``: add routes (e.g. the ``POST /`` AWS JSON services) to the served app;
        ``auth_keys``: SigV4 required (``make_lambda_api_app``'s)."""
        self.auth_keys = auth_keys
        self.state_dir = state_dir
        self.executor_factory = executor_factory
        self.extend = extend
        self.service_kwargs = service_kwargs
        self.url = ""
        self.service: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="lambda-api-server", daemon=True)

    def start(self) -> LambdaApiServer:
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"Lambda API server failed to start: {self._error!r}")
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return  # already stopped (e.g. a restart test stopped it explicitly)
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "Lambda API server thread did not stop"
        if self._error is not None:
            raise RuntimeError(f"Lambda API server failed while stopping: {self._error!r}") from self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        from aiohttp import web

        from edge.control.lambda_api.app import make_lambda_api_app
        from edge.invocation.service.facade import LambdaService

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        executor = self.executor_factory() if self.executor_factory else None
        self.service = LambdaService(self.state_dir, executor=executor, **self.service_kwargs)
        await self.service.start()
        app = make_lambda_api_app(self.service, self.auth_keys)
        if self.extend is not None:
            self.extend(app, self.service)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()
            await self.service.close()

    def client(self, service: str = "lambda", *, read_timeout: float = 30.0, region: str = "us-east-1",
               **config: Any) -> Any:
        """A boto3 client of ``service`` for this server: dummy credentials, no retries."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            service,
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1}, read_timeout=read_timeout, connect_timeout=5, **config),
        )


@pytest.fixture
def lambda_api_factory(tmp_path: Path) -> Iterator[Callable[..., LambdaApiServer]]:
    """Start Lambda API servers (stopped at teardown); ``state_dir`` defaults to ``tmp_path/state``."""
    started: list[LambdaApiServer] = []

    def factory(state_dir: Path | None = None, **kwargs: Any) -> LambdaApiServer:
        server = LambdaApiServer(state_dir or tmp_path / "state", **kwargs).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()
