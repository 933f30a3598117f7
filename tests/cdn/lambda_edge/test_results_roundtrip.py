"""Property: a function that returns what it was given changes nothing (build_event -> parse_result)."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.cdn.lambda_edge.events import EventConfig, build_event
from edge.cdn.lambda_edge.results import RequestResult, ResponseResult, parse_result
from edge.cdn.models import CustomOrigin, EdgeRequest, EdgeResponse

CONFIG = EventConfig("d1.cloudfront.net", "E1", "id==")
TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_!#$%&'*+.^`|~", min_size=1, max_size=12)
VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x24F, blacklist_characters="\x7f"), max_size=30)
HEADERS = st.lists(st.tuples(TOKEN, VALUE), max_size=12)


@settings(max_examples=80, deadline=None)
@given(
    event_type=st.sampled_from(["viewer-request", "origin-request", "origin-response", "viewer-response"]),
    headers=HEADERS,
    response_headers=HEADERS,
    status=st.integers(200, 599),
    uri=st.from_regex(r"\A/[a-z0-9/._~%-]{0,20}\Z"),
    qs=st.from_regex(r"\A[a-z0-9=&%]{0,20}\Z"),
    body=st.one_of(st.none(), st.binary(max_size=64)),
    include_body=st.booleans(),
)
def test_identity_function_changes_nothing(
    event_type: str,
    headers: list[tuple[str, str]],
    response_headers: list[tuple[str, str]],
    status: int,
    uri: str,
    qs: str,
    body: bytes | None,
    include_body: bool,
) -> None:
    origin = CustomOrigin(domain_name="o.example.org", port=443, protocol="https")
    request = EdgeRequest("POST", uri, qs, headers, "203.0.113.9", body=body, origin=origin)
    response = EdgeResponse(status, response_headers, b"payload", status_description="Whatever")
    event = orjson.loads(build_event(event_type, config=CONFIG, request=request, response=response, include_body=include_body))
    cf = event["Records"][0]["cf"]
    returned = cf["response"] if "response" in cf else cf["request"]
    result = parse_result(
        event_type, orjson.dumps(returned), original_request=request, original_response=response, include_body=include_body
    )
    if isinstance(result, RequestResult):
        assert result.request == request
    else:
        assert isinstance(result, ResponseResult) and not result.body_replaced
        assert result.response == response
