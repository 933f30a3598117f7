"""`edgelab serve` end to end: the real supervisor, demo origin, control process and three POP processes on
free loopback ports; then a clean shutdown that leaves no process behind."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Resp:
    status_code: int
    headers: dict[str, str]
    text: str

    def json(self):  # type: ignore[no-untyped-def]
        return json.loads(self.text)


class RequestException(Exception):
    pass


def _do(req: urllib.request.Request, timeout: float) -> Resp:
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Resp(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as e:
        return Resp(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError) as e:
        raise RequestException(str(e)) from None


class requests:  # a minimal stand-in for the requests API used below (its name, lower case)
    RequestException = RequestException

    @staticmethod
    def get(url: str, params: dict | None = None, timeout: float = 20) -> Resp:  # type: ignore[type-arg]
        if params:
            url += "?" + urllib.parse.urlencode(params)
        return _do(urllib.request.Request(url), timeout)

    @staticmethod
    def post(url: str, json: object = None, timeout: float = 20) -> Resp:  # `json=` as in requests.post
        data = globals()["json"].dumps(json).encode()
        return _do(urllib.request.Request(url, data=data, method="POST",
                                          headers={"Content-Type": "application/json"}), timeout)


def free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_until(pred, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred():
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def descendants(pid: int) -> set[int]:
    out: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            child = int(entry.name)
            out |= {child} | descendants(child)
    return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    state = tmp_path_factory.mktemp("state")
    iad, fra, nrt, api, origin = free_ports(5)
    cmd = [sys.executable, "-m", "edge.control.cli.main", "serve", "--state-dir", str(state),
           "--pop", f"IAD={iad}", "--pop", f"FRA={fra}", "--pop", f"NRT={nrt}",
           "--api-port", str(api), "--origin-port", str(origin)]
    log = open(state / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{nrt}/", timeout=2).status_code < 600, 40)
    except AssertionError:
        proc.kill()
        proc.wait()
        raise AssertionError((state / "serve.log").read_text()[-4000:]) from None
    kids = descendants(proc.pid)
    yield {"proc": proc, "pops": {"IAD": iad, "FRA": fra, "NRT": nrt}, "api": api, "origin": origin,
           "state": state, "kids": kids}
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    log.close()


def test_three_pops_serve_the_demo_with_independent_caches(stack) -> None:  # type: ignore[no-untyped-def]
    pops = stack["pops"]
    first = requests.get(f"http://127.0.0.1:{pops['IAD']}/", timeout=20)
    assert first.status_code == 200, first.text[:500]
    assert first.headers["x-amz-cf-pop"].startswith("IAD")
    second = requests.get(f"http://127.0.0.1:{pops['IAD']}/", timeout=20)
    assert second.headers["x-cache"] == "Hit from cloudfront"
    fra = requests.get(f"http://127.0.0.1:{pops['FRA']}/", timeout=20)
    assert fra.headers["x-cache"] == "Miss from cloudfront"  # FRA has its own cache
    assert fra.headers["x-amz-cf-pop"].startswith("FRA")
    # the example functions of the demo ran: security headers from viewer-response, timing per function
    assert "strict-transport-security" in second.headers
    assert 'fn-viewer-request;desc="edge-hello:1 warm"' in second.headers["server-timing"]


def test_generated_response_at_the_edge(stack) -> None:  # type: ignore[no-untyped-def]
    r = requests.get(f"http://127.0.0.1:{stack['pops']['NRT']}/edge/hello", timeout=20)
    assert r.status_code == 200
    assert r.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"
    assert r.json()["requestId"] == r.headers["x-amz-cf-id"]
    assert r.json()["function"] == "us-east-1.edge-hello"


def test_admin_api_pops_and_invalidation(stack) -> None:  # type: ignore[no-untyped-def]
    api = f"http://127.0.0.1:{stack['api']}"
    pops = requests.get(f"{api}/edgelab/v1/pops", timeout=20).json()["pops"]
    assert [(p["name"], p["region"]) for p in pops] == [("IAD", "us-east-1"), ("FRA", "eu-central-1"),
                                                         ("NRT", "ap-northeast-1")]
    url = f"http://127.0.0.1:{stack['pops']['FRA']}/static/about.html"
    requests.get(url, timeout=20)
    assert requests.get(url, timeout=20).headers["x-cache"] == "Hit from cloudfront"
    t0 = time.monotonic()
    r = requests.post(f"{api}/edgelab/v1/invalidations", json={"paths": ["/static/*"]}, timeout=20)
    assert time.monotonic() - t0 < 1.0
    assert r.status_code == 201, r.text
    assert r.json()["pops"]["FRA"]["invalidated"] >= 1
    assert requests.get(url, timeout=20).headers["x-cache"] == "Miss from cloudfront"


def test_lambda_api_serves_boto3(stack) -> None:  # type: ignore[no-untyped-def]
    import boto3
    from botocore.config import Config

    lam = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{stack['api']}", region_name="us-east-1",
                       aws_access_key_id="x", aws_secret_access_key="x",
                       config=Config(retries={"total_max_attempts": 1}))
    names = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    assert {"edge-hello", "security-headers", "default-cache-control", "pretty-urls"} <= names
    out = lam.invoke(FunctionName="edge-hello:1", Payload=b'{"Records":[{"cf":{"config":{"requestId":"r"},'
                     b'"request":{"uri":"/x","clientIp":"1.2.3.4","headers":{}}}}]}')
    assert out["StatusCode"] == 200 and out["ExecutedVersion"] == "1"


def test_logs_and_metrics_cover_every_region(stack) -> None:  # type: ignore[no-untyped-def]
    api = f"http://127.0.0.1:{stack['api']}"
    requests.get(f"http://127.0.0.1:{stack['pops']['IAD']}/edge/hello", timeout=20)
    metrics = requests.get(f"{api}/edgelab/v1/metrics", timeout=20).json()
    assert set(metrics["pops"]) == {"IAD", "FRA", "NRT"}
    requests.get(f"http://127.0.0.1:{stack['pops']['NRT']}/edge/hello", timeout=20)

    def report_lines() -> list[dict]:  # type: ignore[type-arg]
        events = requests.get(f"{api}/edgelab/v1/logs", params={"function": "edge-hello", "tail": 200},
                              timeout=5).json()["events"]
        return [e for e in events if e["message"].startswith("REPORT RequestId")]

    wait_until(lambda: {"us-east-1", "ap-northeast-1"} <= {e["region"] for e in report_lines()}, 5)
    assert all(e["group"] in ("/aws/lambda/us-east-1.edge-hello", "/aws/lambda/edge-hello") for e in report_lines())
    nrt_only = requests.get(f"{api}/edgelab/v1/logs", params={"function": "edge-hello", "region": "ap-northeast-1"},
                            timeout=5).json()["events"]
    assert nrt_only and {e["region"] for e in nrt_only} == {"ap-northeast-1"}


def test_dashboard_page(stack) -> None:  # type: ignore[no-untyped-def]
    r = requests.get(f"http://127.0.0.1:{stack['api']}/edgelab/", timeout=20)
    assert r.status_code == 200 and "edgelab" in r.text


def _cli(stack, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run([sys.executable, "-m", "edge.control.cli.main", *args, "--api",
                           f"http://127.0.0.1:{stack['api']}"], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_cli_client_commands(stack) -> None:  # type: ignore[no-untyped-def]
    out = _cli(stack, "pops")
    assert out.returncode == 0 and "FRA" in out.stdout and "eu-central-1" in out.stdout
    out = _cli(stack, "invalidate", "/static/*", "--pop", "NRT")
    assert out.returncode == 0 and '"Completed"' in out.stdout
    out = _cli(stack, "invoke", "edge-hello:1", "-e", "viewer-request", "--uri", "/edge/hello")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["body"].startswith('{"message": "hello from the edge"')
    assert "REPORT RequestId" in out.stderr and "executed version 1" in out.stderr
    out = _cli(stack, "invoke", "no-such-function", "--uri", "/")
    assert out.returncode == 1 and "ResourceNotFoundException" in out.stderr
    out = _cli(stack, "logs", "edge-hello", "--tail", "5")
    assert out.returncode == 0 and out.stdout.strip()


def test_cli_generate_event_matches_the_pop_builder() -> None:
    out = subprocess.run([sys.executable, "-m", "edge.control.cli.main", "generate-event", "-e", "viewer-response",
                          "--uri", "/x", "--status", "404", "-H", "Accept: text/html"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    cf = json.loads(out.stdout)["Records"][0]["cf"]
    assert cf["config"]["eventType"] == "viewer-response"
    assert cf["response"]["status"] == "404"
    assert cf["request"]["headers"]["accept"] == [{"key": "Accept", "value": "text/html"}]


def test_aws_apis_and_prometheus_on_the_control_port(stack) -> None:  # type: ignore[no-untyped-def]
    """The stack's control port serves /metrics (every POP reached over its admin socket), the CloudWatch Logs
    API over every region's logs (the Lambda@Edge replica groups in the POPs' regions) and SQS."""
    import boto3
    from botocore.config import Config
    from prometheus_client.parser import text_string_to_metric_families

    api = f"http://127.0.0.1:{stack['api']}"
    for pop in ("IAD", "FRA"):
        assert requests.get(f"http://127.0.0.1:{stack['pops'][pop]}/edge/hello", timeout=20).status_code == 200
    r = requests.get(f"{api}/metrics", timeout=20)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for f in text_string_to_metric_families(r.text) for s in f.samples}
    for pop, region in (("IAD", "us-east-1"), ("FRA", "eu-central-1"), ("NRT", "ap-northeast-1")):
        assert got[("edgelab_pop_up", (("pop", pop), ("region", region)))] == 1.0
    assert got[("edgelab_pop_requests_total", (("pop", "FRA"), ("region", "eu-central-1")))] >= 1
    assert got[("edgelab_pop_bytes_sent_total", (("pop", "FRA"), ("region", "eu-central-1")))] > 0
    fra_edge = [v for (name, labels), v in got.items() if name == "edgelab_lambda_invocations_total"
                and ("process", "FRA") in labels and "edge-hello" in dict(labels)["function"]]
    assert fra_edge and sum(fra_edge) >= 1

    def client(service: str, region: str = "us-east-1", **config: object):  # type: ignore[no-untyped-def]
        return boto3.client(service, endpoint_url=api, region_name=region, aws_access_key_id="x",
                            aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}, **config))

    logs = client("logs", "eu-central-1")
    wait_until(lambda: "/aws/lambda/us-east-1.edge-hello" in
               [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]], 10)
    reports = logs.filter_log_events(logGroupName="/aws/lambda/us-east-1.edge-hello", filterPattern='"REPORT RequestId"')
    assert reports["events"] and all(e["logStreamName"].split("/")[3].startswith("[1]") for e in reports["events"])
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="stack-q")["QueueUrl"]
    assert url == f"{api}/000000000000/stack-q"
    sqs.send_message(QueueUrl=url, MessageBody="through the stack")
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"][0]["Body"] == "through the stack"
    events = client("events")
    events.put_rule(Name="stack-rule", ScheduleExpression="cron(0 3 * * ? *)")
    assert events.describe_rule(Name="stack-rule")["State"] == "ENABLED"
    bad = requests.post(f"{api}/", json={}, timeout=20)
    assert bad.status_code == 400 and bad.json()["__type"] == "UnknownOperationException"


def test_sigint_stops_everything(stack) -> None:  # type: ignore[no-untyped-def]
    proc = stack["proc"]
    kids = stack["kids"] | descendants(proc.pid)
    assert len(kids) >= 5  # origin, control, three POPs (plus their zygotes and workers)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{k}").exists() and
                                              "Z" not in Path(f"/proc/{k}/stat").read_text().split(")")[1][:3]
                                              for k in kids):
        time.sleep(0.1)
    leftovers = [k for k in kids if Path(f"/proc/{k}").exists()]
    assert not leftovers, f"processes left behind: {leftovers}"
