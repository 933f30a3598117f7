"""A control-port application (Lambda API + CloudFront API, as the control process mounts them) on a real loopback
socket, served from a background thread so that boto3 and the AWS CLI can be used from plain tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


class CloudFrontApiServer:
    def __init__(self, state_dir: Path, in_use: frozenset[str] = frozenset()) -> None:
        self.state_dir = state_dir
        self.in_use = in_use
        self.url = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="cloudfront-api-server", daemon=True)

    def start(self) -> CloudFrontApiServer:
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"server failed to start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        from aiohttp import web

        from edge.cdn.cloudfront_functions.db import CffDatabase
        from edge.cdn.cloudfront_functions.functions import FunctionStore
        from edge.cdn.cloudfront_functions.kvs import KeyValueStoreService
        from edge.control.cloudfront_api.app import add_cloudfront_routes
        from edge.control.lambda_api.app import make_lambda_api_app
        from edge.invocation.service.facade import LambdaService

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        service = LambdaService(self.state_dir)
        await service.start()
        db = CffDatabase(self.state_dir)
        app = make_lambda_api_app(service)
        add_cloudfront_routes(app, FunctionStore(db, in_use=self.in_use.__contains__), KeyValueStoreService(db))
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()
            await service.close()
            db.close()

    def client(self, service: str = "cloudfront") -> Any:
        import boto3
        from botocore.config import Config

        # the data plane prefixes the host with the store's account id: it lands in the URL's user part
        url = self.url.replace("http://", "http://kvs@") if service == "cloudfront-keyvaluestore" else self.url
        return boto3.session.Session().client(
            service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
            aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}, connect_timeout=5))


@pytest.fixture
def cf_api(tmp_path: Path) -> Iterator[CloudFrontApiServer]:
    server = CloudFrontApiServer(tmp_path / "state", in_use=frozenset({"associated"})).start()
    try:
        yield server
    finally:
        server.stop()
