"""Harness for unit tests of the example functions in functions/.

Builds a real event with edge.cdn.lambda_edge.events.build_event, calls the function's handler the way the Python
runtime does (JSON in, json.dumps out) and validates the result with edge.cdn.lambda_edge.results.parse_result,
so every example is checked against the same contract the POP enforces.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

from edge.cdn.lambda_edge.events import EventConfig, build_event
from edge.cdn.lambda_edge.results import Result, parse_result
from edge.cdn.models import CustomOrigin, EdgeRequest, EdgeResponse

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
CONFIG = EventConfig("d111111abcdef8.cloudfront.net", "EDFDVBD6EXAMPLE", "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==")
ORIGIN = CustomOrigin(domain_name="origin.example.org", port=443, protocol="https", origin_id="web")


@dataclass
class FakeContext:
    """The attributes of the Lambda context object the examples use."""

    function_name: str
    function_version: str = "1"
    aws_request_id: str = "c0ffee00-0000-4000-8000-000000000000"
    memory_limit_in_mb: str = "128"

    def get_remaining_time_in_millis(self) -> int:
        return 5000


def load_function(name: str) -> ModuleType:
    path = FUNCTIONS_DIR / name / "index.py"
    spec = importlib.util.spec_from_file_location(f"edge_example_{name.replace('-', '_')}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def viewer_request(uri: str = "/", querystring: str = "", headers: list[tuple[str, str]] | None = None,
                   method: str = "GET", body: bytes | None = None) -> EdgeRequest:
    base = [("Host", "www.example.com"), ("User-Agent", "curl/8.5.0"), ("Accept", "*/*")]
    return EdgeRequest(method, uri, querystring, base + (headers or []), "198.51.100.7", body=body, origin=ORIGIN)


def origin_request(uri: str = "/", querystring: str = "", headers: list[tuple[str, str]] | None = None,
                   method: str = "GET") -> EdgeRequest:
    base = [
        ("Host", "origin.example.org"),
        ("User-Agent", "Amazon CloudFront"),
        ("Via", "2.0 a8ada7c07139510647e7604c5917836f.cloudfront.net (CloudFront)"),
        ("X-Forwarded-For", "198.51.100.7"),
        ("Accept-Encoding", "gzip"),
        ("X-Amz-Cf-Id", CONFIG.request_id),
    ]
    return EdgeRequest(method, uri, querystring, base + (headers or []), "198.51.100.7", origin=ORIGIN)


def origin_response(status: int = 200, headers: list[tuple[str, str]] | None = None, body: bytes = b"<p>hi</p>") -> EdgeResponse:
    base = [("Content-Type", "text/html"), ("Date", "Mon, 06 Jan 2025 10:00:00 GMT"), ("Server", "nginx")]
    return EdgeResponse(status, base + (headers or []), body)


@dataclass
class Edge:
    """Runs one example function for one event type through the real event contract."""

    name: str
    module: ModuleType

    def __call__(self, event_type: str, request: EdgeRequest, response: EdgeResponse | None = None,
                 *, include_body: bool = False) -> Result:
        payload = build_event(event_type, config=CONFIG, request=request, response=response, include_body=include_body)
        result = self.module.handler(json.loads(payload), FakeContext(function_name=f"us-east-1.{self.name}"))
        return parse_result(
            event_type,
            json.dumps(result).encode(),  # the Python runtime serialises with json.dumps
            original_request=request,
            original_response=response,
            include_body=include_body,
        )


def edge_function(name: str) -> Edge:
    return Edge(name, load_function(name))


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    values = [v for k, v in headers if k.lower() == name.lower()]
    return values[0] if values else None


def json_body(body: Any) -> Any:
    return orjson.loads(body)
