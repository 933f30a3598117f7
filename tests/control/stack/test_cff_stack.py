"""CloudFront Functions in a real stack (`edgelab serve --watch`: supervisor, control process, three POP processes):
a function declared in the settings with a key value store, driven through boto3 on the control port; a PutKey
is visible in every POP within a second; `edgelab logs` reads the function's console output; an association that
does not resolve is reported at startup and answered with CloudFront's error; editing the declared function's file
republishes it. And the corpus: every configuration refused only for its FunctionAssociations starts unmodified."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.control.stack.test_serve import REPO, free_ports, requests, wait_until
from tests.corpus import corpus_dir

ECHO = """import cf from 'cloudfront';
const kvs = cf.kvs();
async function handler(event) {
  let v = 'unset';
  try { v = await kvs.get('greeting'); } catch (e) { }
  console.log('greeting is ' + v);
  return {statusCode: 200, headers: {'content-type': {value: 'text/plain'}}, body: '%s:' + v};
}"""


def distribution() -> dict[str, Any]:
    def behavior(name: str, pattern: str | None = None) -> dict[str, Any]:
        b: dict[str, Any] = {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
                             "CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",
                             "FunctionAssociations": {"Quantity": 1, "Items": [{
                                 "EventType": "viewer-request",
                                 "FunctionARN": f"arn:aws:cloudfront::111122223333:function/{name}"}]}}
        if pattern:
            b["PathPattern"] = pattern
        return b
    return {"DistributionConfig": {
        "CallerReference": "cff", "Comment": "", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "app.example.test",
                                              "CustomOriginConfig": {"HTTPPort": 80, "OriginProtocolPolicy": "http-only"}}]},
        "DefaultCacheBehavior": behavior("kvs-echo"),
        "CacheBehaviors": {"Quantity": 1, "Items": [behavior("not-there", "/missing/*")]},
    }}


def _serve(tmp: Path, dist: Path, settings: Path, pops: dict[str, int], api: int, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "edge.control.cli.main", "serve", "--state-dir", str(tmp / "state"),
           "--distribution", str(dist), "--settings", str(settings), "--api-port", str(api), *extra]
    for name, port in pops.items():
        cmd += ["--pop", f"{name}={port}"]
    return subprocess.Popen(cmd, cwd=REPO, stdout=open(tmp / "serve.log", "wb"), stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("cff")
    fdir = tmp / "kvs-echo"
    fdir.mkdir()
    (fdir / "index.js").write_text(ECHO % "v1")
    (fdir / "cloudfront-function.json").write_text(json.dumps({"key_value_store": "greetings"}))
    iad, fra, nrt, api = free_ports(4)
    (tmp / "dist.json").write_text(json.dumps(distribution()))
    (tmp / "settings.toml").write_text('[origins]\n"app.example.test" = "127.0.0.1:9"\n'
                                       '[[cloudfront_functions]]\nname = "kvs-echo"\ndir = "kvs-echo"\n')
    pops = {"IAD": iad, "FRA": fra, "NRT": nrt}
    proc = _serve(tmp, tmp / "dist.json", tmp / "settings.toml", pops, api, "--watch")
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{nrt}/", timeout=2).status_code == 200, 40)
    except AssertionError:
        _stop(proc)
        raise AssertionError((tmp / "serve.log").read_text()[-4000:]) from None
    yield {"pops": pops, "api": api, "tmp": tmp, "dir": fdir}
    _stop(proc)


def _client(api: int, service: str) -> Any:
    import boto3
    from botocore.config import Config

    host = "kvs@127.0.0.1" if service == "cloudfront-keyvaluestore" else "127.0.0.1"
    return boto3.client(service, endpoint_url=f"http://{host}:{api}", region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}))


def test_put_key_reaches_every_pop_within_a_second(stack: dict[str, Any]) -> None:
    cf, kvs = _client(stack["api"], "cloudfront"), _client(stack["api"], "cloudfront-keyvaluestore")
    arn = cf.describe_key_value_store(Name="greetings")["KeyValueStore"]["ARN"]
    for value in ("hello", "bonjour"):
        etag = kvs.describe_key_value_store(KvsARN=arn)["ETag"]
        kvs.put_key(KvsARN=arn, Key="greeting", Value=value, IfMatch=etag)
        put_at = time.monotonic()
        for name, port in stack["pops"].items():
            while (body := requests.get(f"http://127.0.0.1:{port}/", timeout=5).text) != f"v1:{value}":
                assert time.monotonic() - put_at < 1.0, f"{name} still answers {body!r} a second after PutKey"
                time.sleep(0.02)
    r = requests.get(f"http://127.0.0.1:{stack['pops']['FRA']}/", timeout=5)
    assert r.headers["x-cache"] == "FunctionGeneratedResponse from cloudfront"
    assert 'fn-viewer-request;desc="kvs-echo:LIVE cff cu=' in r.headers["server-timing"]


def test_logs_and_the_unresolved_association(stack: dict[str, Any]) -> None:
    api = f"http://127.0.0.1:{stack['api']}"

    def lines() -> list[str]:
        events = requests.get(f"{api}/edgelab/v1/logs", params={"function": "kvs-echo", "tail": 50}, timeout=5).json()
        return [e["message"] for e in events["events"] if e["group"] == "/aws/cloudfront/function/kvs-echo"]

    # self-contained (pytest-xdist may run this test on a worker whose stack served nothing yet)
    assert requests.get(f"http://127.0.0.1:{stack['pops']['IAD']}/", timeout=5).status_code == 200
    wait_until(lambda: any(" greeting is " in x for x in lines()), 5)
    r = requests.get(f"http://127.0.0.1:{stack['pops']['IAD']}/missing/x", timeout=5)
    assert (r.status_code, r.headers["x-cache"]) == (503, "FunctionExecutionError from cloudfront")
    log = (stack["tmp"] / "serve.log").read_text()
    reported = [x for x in log.splitlines() if "CloudFront function not-there" in x and "ERROR" in x]
    assert len(reported) == 1 and "edgelab cff create --publish" in reported[0]


def test_editing_the_declared_function_republishes_it(stack: dict[str, Any]) -> None:
    (stack["dir"] / "index.js").write_text(ECHO % "v2")
    port = stack["pops"]["NRT"]
    wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=5).text.startswith("v2:"), 10)


def _corpus() -> list[Path]:
    return sorted(p for p in corpus_dir().glob("*.json") if b"FunctionAssociations" in p.read_bytes()
                  and any(json.dumps(b.get("FunctionAssociations", {})).count("FunctionARN")
                          for b in _behaviors(json.loads(p.read_bytes()))))


def _behaviors(doc: dict[str, Any]) -> list[dict[str, Any]]:
    cfg = doc.get("DistributionConfig") or doc.get("Distribution", {}).get("DistributionConfig") or doc
    return [cfg.get("DefaultCacheBehavior", {}), *(cfg.get("CacheBehaviors", {}).get("Items") or [])]


def test_corpus_configurations_with_function_associations_start_unmodified(tmp_path: Path) -> None:
    """Each file as it is, with its function names resolved to functions this test creates (each answers with its
    own name, so the response proves the association resolved)."""
    from edge.cdn.cloudfront_functions.db import CffDatabase
    from edge.cdn.cloudfront_functions.functions import FunctionStore
    from edge.cdn.config.distribution import ConfigError, load_distribution

    files = _corpus()
    assert len(files) >= 4
    stacks = []  # started together (their startups overlap), checked, stopped
    try:
        for path in files:
            try:
                dist = load_distribution(path)
            except ConfigError as exc:  # refused for another reason (e.g. ResponseHeadersPolicyId): not this issue's
                pytest.fail(f"{path.name} is refused for something else: {exc}")
            tmp = tmp_path / path.stem
            db = CffDatabase(tmp / "state")
            store = FunctionStore(db)
            paths = {}
            for b in dist.all_behaviors:
                for a in b.function_associations:
                    etag = store.create(a.function_name, {"Comment": "", "Runtime": "cloudfront-js-2.0"},
                                        "function handler(e) { return {statusCode: 200, body: '"
                                        f"{a.function_name}'}}; }}")["ETag"]
                    store.publish(a.function_name, etag)
                    paths[a.function_name] = "/" if b.is_default else "/" + b.path_pattern.lstrip("/").replace("*", "x")
            db.close()
            (tmp / "settings.toml").write_text('[[pops]]\nname = "IAD"\nregion = "us-east-1"\n')
            iad, api = free_ports(2)
            stacks.append((path, dist, tmp, paths, iad, _serve(tmp, path, tmp / "settings.toml", {"IAD": iad}, api)))
        for path, dist, tmp, paths, iad, _ in stacks:
            try:
                wait_until(lambda port=iad: requests.get(f"http://127.0.0.1:{port}/__nothing", timeout=2).status_code > 0,
                           40)
                for name, p in paths.items():
                    r = requests.get(f"http://127.0.0.1:{iad}{p}", timeout=5)
                    if not dist.enabled:  # CloudFront refuses before any function runs
                        assert r.status_code == 403 and r.headers["x-cache"] == "Error from cloudfront"
                    else:
                        assert (r.status_code, r.text) == (200, name), (path.name, p, r.text[:300])
                assert "never published" not in (tmp / "serve.log").read_text()  # every association resolved
            except AssertionError:
                raise AssertionError(f"{path.name}: {(tmp / 'serve.log').read_text()[-3000:]}") from None
    finally:
        for *_, proc in stacks:
            _stop(proc)
