"""The optional SigV4 check (lambda_api/auth.py over lambda_api/sigv4.py): boto3 clients against a real loopback
server with ``[[api.auth]]`` keys (right key passes; wrong secret, unknown key, an expired date and no signature
fail with AWS's codes and messages, per protocol), off by default, the CLI's client signing, and the verdicts of
``verify`` that boto3 cannot produce."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from edge.control.aws_json.dispatch import add_dispatcher
from edge.control.cli import api_client
from edge.control.lambda_api.sigv4 import verify
from edge.control.stack.control_node import aws_json_services
from tests.conftest import LambdaApiServer

AKID, SECRET = "AKIAEDGELABTEST00001", "s3cr3t/with+chars"
KEYS = {AKID: SECRET}
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS Secret "
            "Access Key and signing method. Consult the service documentation for details.")
INVALID_TOKEN = "The security token included in the request is invalid."
Factory = Callable[..., LambdaApiServer]


_SESSION: list[Any] = []  # one boto3 session: its loaded service models are shared by every client


def _client(api: LambdaApiServer, service: str, akid: str = AKID, secret: str = SECRET) -> Any:
    import boto3
    from botocore.config import Config

    if not _SESSION:
        _SESSION.append(boto3.session.Session())
    return _SESSION[0].client(service, endpoint_url=api.url, region_name="us-east-1",
                                          aws_access_key_id=akid, aws_secret_access_key=secret,
                                          config=Config(retries={"total_max_attempts": 1}))


def _error(call: Callable[[], Any]) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call()
    err = info.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LambdaApiServer]:
    state = tmp_path_factory.mktemp("auth") / "state"
    server = LambdaApiServer(state, auth_keys=KEYS,
                             extend=lambda app, service: add_dispatcher(app, aws_json_services(state, service))).start()
    yield server
    server.stop()


def test_lambda_api_right_wrong_unknown_and_unsigned(api: LambdaApiServer) -> None:
    good = _client(api, "lambda")
    assert good.list_functions()["Functions"] == []
    assert good.get_account_settings()["AccountLimit"]["ConcurrentExecutions"] == 1000
    # a path with an encoded ARN and a query string: signed and checked like every other request
    code, _, status = _error(lambda: good.get_function(
        FunctionName="arn:aws:lambda:us-east-1:000000000000:function:nope", Qualifier="1"))
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, _, _ = _error(lambda: good.invoke(FunctionName="nope", Payload=b'{"a": [1, 2]}'))
    assert code == "ResourceNotFoundException"

    assert _error(_client(api, "lambda", secret="wrong").list_functions) == ("InvalidSignatureException", MISMATCH, 403)
    assert _error(_client(api, "lambda", akid="AKIAUNKNOWN000000000").list_functions) == (
        "UnrecognizedClientException", INVALID_TOKEN, 403)
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(f"{api.url}/2015-03-31/functions", timeout=10)
    assert unsigned.value.code == 403
    assert unsigned.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert unsigned.value.headers["x-amzn-RequestId"]
    assert json.loads(unsigned.value.read()) == {"message": "Missing Authentication Token"}


def _client_clock(monkeypatch: pytest.MonkeyPatch, when: dt.datetime) -> None:
    """Set the clock boto3 signs with (botocore's own signer, or awscrt's when installed, as here)."""
    import botocore.crt.auth

    def clock(remove_tzinfo: bool = True) -> dt.datetime:
        return when.replace(tzinfo=None) if remove_tzinfo else when

    monkeypatch.setattr(botocore.auth, "get_current_datetime", clock)
    monkeypatch.setattr(botocore.crt.auth, "get_current_datetime", clock)


def test_an_expired_signature_is_refused_as_aws_words_it(api: LambdaApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6)
    _client_clock(monkeypatch, past)  # the client's clock is late
    code, message, status = _error(_client(api, "lambda").list_functions)
    assert (code, status) == ("InvalidSignatureException", 403)
    stamp = past.strftime("%Y%m%dT%H%M%SZ")
    assert message.startswith(f"Signature expired: {stamp} is now earlier than ") and message.endswith(" - 5 min.)")
    _client_clock(monkeypatch, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=4))
    assert _client(api, "lambda").list_functions()["Functions"] == []  # 4 minutes of skew are accepted


def test_json_protocol_services_answer_in_their_shape(api: LambdaApiServer) -> None:
    assert _client(api, "logs").describe_log_groups()["logGroups"] == []
    assert _error(_client(api, "logs", secret="wrong").describe_log_groups) == ("InvalidSignatureException",
                                                                                 MISMATCH, 400)
    assert _error(_client(api, "logs", akid="AKIAUNKNOWN000000000").describe_log_groups) == (
        "UnrecognizedClientException", INVALID_TOKEN, 400)
    assert "QueueUrls" not in _client(api, "sqs").list_queues()
    assert _error(_client(api, "sqs", akid="AKIAUNKNOWN000000000").list_queues) == ("InvalidClientTokenId",
                                                                                     INVALID_TOKEN, 403)
    assert _error(_client(api, "sqs", secret="wrong").list_queues) == ("SignatureDoesNotMatch", MISMATCH, 403)


def test_off_by_default_unsigned_requests_pass(lambda_api_factory: Factory, tmp_path: Path) -> None:
    api = lambda_api_factory(tmp_path / "open")
    with urllib.request.urlopen(f"{api.url}/2015-03-31/functions", timeout=10) as resp:
        assert resp.status == 200 and json.loads(resp.read())["Functions"] == []
    assert _client(api, "lambda", secret="anything").list_functions()["Functions"] == []


def test_cli_client_signs_when_keys_are_set(api: LambdaApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGELAB_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("EDGELAB_SECRET_ACCESS_KEY", raising=False)
    with pytest.raises(api_client.ApiError) as unsigned:
        api_client.request_json(api.url, "GET", "/2015-03-31/functions")
    assert unsigned.value.status == 403 and "Missing Authentication Token" in unsigned.value.body
    monkeypatch.setenv("EDGELAB_ACCESS_KEY_ID", AKID)
    with pytest.raises(SystemExit, match="EDGELAB_SECRET_ACCESS_KEY is not set"):
        api_client.request_json(api.url, "GET", "/2015-03-31/functions")
    monkeypatch.setenv("EDGELAB_SECRET_ACCESS_KEY", SECRET)
    assert api_client.request_json(api.url, "GET", "/2015-03-31/functions?MaxItems=5")["Functions"] == []
    with pytest.raises(api_client.ApiError) as missing:  # signed POST with a body: reaches the operation
        api_client.request_json(api.url, "POST", "/2015-03-31/functions/nope/invocations", {"x": 1})
    assert missing.value.status == 404 and "Function not found" in missing.value.body
    monkeypatch.setenv("EDGELAB_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(api_client.ApiError) as wrong:
        api_client.request_json(api.url, "GET", "/2015-03-31/functions")
    assert wrong.value.status == 403 and "does not match" in wrong.value.body


NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def _verify(headers: dict[str, str], body: bytes = b"") -> Any:
    lower: dict[str, list[str]] = {}
    for k, v in headers.items():
        lower.setdefault(k.lower(), []).append(v)
    return verify("GET", "/x", headers, lower, body, KEYS, NOW)


def test_verify_refuses_unusable_headers_and_checks_sigv4a_key_and_clock() -> None:
    date = NOW.strftime("%Y%m%dT%H%M%SZ")
    assert _verify({}).kind == "missing"
    assert _verify({"Authorization": "Basic abc"}).kind == "incomplete"
    assert "'Signature'" in _verify({"Authorization": f"AWS4-HMAC-SHA256 Credential={AKID}/20260102/us-east-1/"
                                                      "lambda/aws4_request, SignedHeaders=host"}).message
    no_date = _verify({"Authorization": f"AWS4-HMAC-SHA256 Credential={AKID}/20260102/us-east-1/lambda/aws4_request, "
                                        "SignedHeaders=host, Signature=ab", "Host": "h"})
    assert no_date.kind == "incomplete" and "X-Amz-Date" in no_date.message
    future = (NOW + dt.timedelta(minutes=6)).strftime("%Y%m%dT%H%M%SZ")
    early = _verify({"Authorization": f"AWS4-HMAC-SHA256 Credential={AKID}/20260102/us-east-1/lambda/aws4_request, "
                                      "SignedHeaders=host;x-amz-date, Signature=ab", "Host": "h", "X-Amz-Date": future})
    assert early.kind == "expired" and early.message.startswith(f"Signature not yet current: {future} is still later")
    sigv4a = {"Authorization": f"AWS4-ECDSA-P256-SHA256 Credential={AKID}/20260102/cloudfront-keyvaluestore/"
                               "aws4_request, SignedHeaders=host;x-amz-date, Signature=30", "X-Amz-Date": date}
    assert _verify(sigv4a) is None
    assert _verify({**sigv4a, "Authorization": sigv4a["Authorization"].replace(AKID, "AKIAOTHER00000000000")}
                   ).kind == "unknown_key"


def test_verify_refuses_a_payload_hash_that_is_not_the_bodys() -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = b'{"a": 1}'
    request = AWSRequest(method="GET", url="http://h:1/x", data=body,
                         headers={"X-Amz-Content-SHA256": hashlib.sha256(b"other").hexdigest()})
    SigV4Auth(Credentials(AKID, SECRET), "lambda", "us-east-1").add_auth(request)
    headers = {**dict(request.headers.items()), "Host": "h:1"}
    now = dt.datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    lower = {k.lower(): [v] for k, v in headers.items()}
    assert verify("GET", "/x", headers, lower, body, KEYS, now).kind == "signature"
    assert verify("GET", "/x", headers, lower, b"other", KEYS, now) is None  # the hash it signed is this body's


async def test_cloudfront_xml_shape_and_edgelab_endpoints_exempt(aiohttp_client: Any, tmp_path: Path) -> None:
    from xml.etree import ElementTree

    from aiohttp import web
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from edge.control.lambda_api.app import make_lambda_api_app
    from edge.invocation import LambdaService

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="admin")

    async with LambdaService(tmp_path / "state") as svc:
        app = make_lambda_api_app(svc, KEYS)
        admin = web.Application()
        admin.router.add_get("/health", ok)
        app.add_subapp("/edgelab/v1", admin)
        client = await aiohttp_client(app)
        resp = await client.get("/edgelab/v1/health")  # edgelab's own endpoints are not AWS APIs
        assert resp.status == 200 and await resp.text() == "admin"
        url = str(client.make_url("/2020-05-31/distribution"))
        request = AWSRequest(method="GET", url=url)
        SigV4Auth(Credentials("AKIAUNKNOWN000000000", "x"), "cloudfront", "us-east-1").add_auth(request)
        resp = await client.get("/2020-05-31/distribution", headers=dict(request.headers.items()))
        assert resp.status == 403 and resp.headers["x-amzn-RequestId"]
        error = ElementTree.fromstring(await resp.read()).find("{*}Error")
        assert error is not None
        assert [error.findtext(f"{{*}}{k}") for k in ("Type", "Code", "Message")] == [
            "Sender", "InvalidClientTokenId", INVALID_TOKEN]
        resp = await client.get("/2020-05-31/distribution")
        assert resp.status == 403 and "<Code>MissingAuthenticationToken</Code>" in await resp.text()


def test_settings_api_auth_keys() -> None:
    from edge.cdn.config.policies import ConfigError
    from edge.cdn.config.settings import parse_settings

    assert parse_settings({}).api_auth == {}
    keys = parse_settings({"api": {"auth": [{"access_key_id": AKID, "secret_access_key": SECRET}]}}).api_auth
    assert dict(keys) == KEYS
    for bad, where in (({"access_key_id": "akid", "secret_access_key": "x"}, "api.auth[0].access_key_id"),
                       ({"access_key_id": AKID, "secret_access_key": ""}, "api.auth[0].secret_access_key"),
                       ({"access_key_id": AKID, "secret_access_key": "x", "token": "t"}, "api.auth[0].token")):
        with pytest.raises(ConfigError, match=where.replace("[", r"\[").replace("]", r"\]")):
            parse_settings({"api": {"auth": [bad]}})
    with pytest.raises(ConfigError, match="duplicate access key id"):
        parse_settings({"api": {"auth": [{"access_key_id": AKID, "secret_access_key": "a"}] * 2}})


def test_edgelab_invoke_signs_when_keys_are_set(api: LambdaApiServer, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from edge.control.cli.main import main

    monkeypatch.delenv("EDGELAB_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("EDGELAB_SECRET_ACCESS_KEY", raising=False)
    assert main(["invoke", "nope:1", "--payload", "{}", "--api", api.url]) == 1
    assert "MissingAuthenticationTokenException" in capsys.readouterr().err
    monkeypatch.setenv("EDGELAB_ACCESS_KEY_ID", AKID)
    monkeypatch.setenv("EDGELAB_SECRET_ACCESS_KEY", SECRET)
    assert main(["invoke", "nope:1", "--payload", "{}", "--api", api.url]) == 1
    err = capsys.readouterr().err
    assert "ResourceNotFoundException" in err and "function:nope:1" in err  # signed: it reached the operation
