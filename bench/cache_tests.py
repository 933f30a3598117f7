"""Run the public HTTP caching test suite (https://github.com/http-tests/cache-tests) through one edgelab POP.

    .venv/bin/python -m bench.cache_tests /path/to/cache-tests [--id TEST_ID] [--json FILE] [--node PATH]
    deploy/dev.sh cache-tests /path/to/cache-tests        # the same

The suite is never part of this repository: clone it anywhere outside it (``git clone
https://github.com/http-tests/cache-tests``) and pass its path. Its npm dependencies are installed into that
checkout (``npm install --omit=dev``, from the npm registry, with the npm client bundled with edgelab's Node.js)
the first time; Node.js itself is edgelab's (``python -m edge.invocation.execution.node_dist``), never the
host's, unless ``--node`` names a binary.

What runs: the suite's own origin server (``test-engine/server/server.mjs``) on a free loopback port; one POP in
this process, whose only origin (``cache-tests.origin``) is mapped to it, with the distribution of
:func:`distribution_config` (the managed cache policy ``UseOriginCacheControlHeaders-QueryStrings``, the closest
CloudFront gets to plain RFC 9111, all seven methods allowed since the suite configures its server with PUT); then
the suite's command-line client (``test-engine/cli.mjs``) against the POP. The results are graded the way the
suite's own result page grades them (pass, fail, optional fail, setup failure, failed dependency, ...; see
:func:`grade`), and the summary lists every required failure, each marked with the CloudFront documentation that
explains it (:data:`DOCUMENTED`) or as ``NOT DOCUMENTED BY CLOUDFRONT``. Exit status 1 when such a failure exists.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ORIGIN_DOMAIN = "cache-tests.origin"
CACHE_POLICY = "4cc15a8a-d715-48a4-82b8-cc0b614638fe"  # Managed-UseOriginCacheControlHeaders-QueryStrings
ORIGIN_REQUEST_POLICY = "b689b0a8-53d0-40ab-baf2-68738e2966ac"  # Managed-AllViewerExceptHostHeader
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
NODE_MAJOR = 20
CLI_TIMEOUT_S = 900.0

# Required tests whose failure through a POP is what CloudFront documents (test id -> why, with the AWS page).
# A required failure not listed here is a bug of edgelab's (or a CloudFront behaviour not documented).
_GUIDE = "https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/"
_ERROR_CACHING = (f"errors are cached for max(ErrorCachingMinTTL, 10 s by default; the origin's max-age/s-maxage/"
                  f"Expires) ({_GUIDE}custom-error-pages-expiration.html, {_GUIDE}HTTPStatusCodes.html)")
_NO_UNSAFE_INVALIDATION = (f"objects leave the cache when they expire or are invalidated ({_GUIDE}Invalidation.html); "
                           f"responses to other methods are not cached and do not touch it "
                           f"({_GUIDE}RequestAndResponseBehaviorCustomOrigin.html#RequestCustomHTTPMethods)")
_NO_CDN_CACHE_CONTROL = (f"CloudFront's freshness comes from Cache-Control and Expires only ({_GUIDE}Expiration.html); "
                         "CDN-Cache-Control (RFC 9213) is not among the headers it reads")
DOCUMENTED: Mapping[str, str] = {
    **dict.fromkeys((f"heuristic-{code}-not_cached" for code in (500, 502, 503, 504)), _ERROR_CACHING),
    **dict.fromkeys((f"status-{code}-stale" for code in (404, 500, 502, 503, 504)), _ERROR_CACHING),
    **dict.fromkeys((f"invalidate-{method}" for method in ("POST", "PUT", "DELETE")), _NO_UNSAFE_INVALIDATION),
    "other-authorization": (f"Authorization is removed from origin requests unless the cache policy puts it in the "
                            f"cache key (or caching is disabled) ({_GUIDE}add-origin-custom-headers.html"
                            f"#add-origin-custom-headers-forward-authorization), so the origin never answered it"),
    **dict.fromkeys(("cdn-private", "cdn-no-cache", "cdn-no-store-cc-fresh", "cdn-fresh-cc-nostore", "cdn-max-age"),
                    _NO_CDN_CACHE_CONTROL),
}


def distribution_config() -> dict[str, Any]:
    """The distribution the suite runs through: one custom origin, one behavior with the managed cache policy
    ``UseOriginCacheControlHeaders-QueryStrings`` and the managed origin request policy
    ``AllViewerExceptHostHeader`` (the suite's server needs its ``Req-Num``/``Test-ID`` request headers; without
    an origin request policy CloudFront forwards only what the cache policy names)."""
    return {"DistributionConfig": {
        "CallerReference": "cache-tests", "Comment": "http-tests/cache-tests through one POP", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "suite", "DomainName": ORIGIN_DOMAIN,
            "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only",
                                   "OriginReadTimeout": 30, "OriginKeepaliveTimeout": 5}}]},
        "DefaultCacheBehavior": {
            "TargetOriginId": "suite", "ViewerProtocolPolicy": "allow-all", "Compress": False,
            "CachePolicyId": CACHE_POLICY, "OriginRequestPolicyId": ORIGIN_REQUEST_POLICY,
            "AllowedMethods": {"Quantity": 7, "Items": ALL_METHODS,
                               "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}}},
    }}


# --- grading (the suite's documented result kinds) ---------------------------------------------------------

PASS, FAIL, OPTIONAL_FAIL, YES, NO = "pass", "fail", "optional_fail", "yes", "no"
SETUP_FAIL, HARNESS_FAIL, DEPENDENCY_FAIL, RETRY, UNTESTED = "setup_fail", "harness_fail", "dependency_fail", \
    "retry", "untested"
_PASSING = frozenset({PASS, YES})


@dataclass(frozen=True, slots=True)
class TestInfo:
    id: str
    name: str
    suite: str
    kind: str  # required | optimal | check
    depends_on: tuple[str, ...]
    browser_only: bool


def grade(test_id: str, tests: Mapping[str, TestInfo], results: Mapping[str, Any]) -> str:
    """One test's grade from the client's raw results: ``true`` passed, ``[ErrorName, message]`` failed; a test whose
    dependency did not pass (or answer yes) is ``dependency_fail``, a ``Setup`` error ``setup_fail`` (``retry``
    when the server saw a request twice), an ``AbortError`` a harness failure; a failed ``optimal`` test is an
    optional failure, a ``check`` answers yes/no."""
    result = results.get(test_id)
    if result is None:
        return UNTESTED
    test = tests[test_id]
    for dep in test.depends_on:
        if grade(dep, tests, results) not in _PASSING:
            return DEPENDENCY_FAIL
    if isinstance(result, list) and result and result[0] == "Setup":
        return RETRY if len(result) > 1 and result[1] == "retry" else SETUP_FAIL
    if result is False or (isinstance(result, list) and result and result[0] == "AbortError"):
        return HARNESS_FAIL
    ok = result is True
    if test.kind == "optimal":
        return PASS if ok else OPTIONAL_FAIL
    if test.kind == "check":
        return YES if ok else NO
    return PASS if ok else FAIL


@dataclass(frozen=True, slots=True)
class Summary:
    required: Counter[str]  # grade -> count, required tests (browser-only ones excluded)
    optimal: Counter[str]
    check: Counter[str]
    failures: tuple[tuple[str, str, str], ...]  # (test id, message, CloudFront's documentation or "")

    @property
    def graded(self) -> int:
        return self.required[PASS] + self.required[FAIL]

    @property
    def undocumented(self) -> tuple[tuple[str, str, str], ...]:
        return tuple(f for f in self.failures if not f[2])


def summarize(tests: Mapping[str, TestInfo], results: Mapping[str, Any],
              documented: Mapping[str, str] = DOCUMENTED) -> Summary:
    counts: dict[str, Counter[str]] = {"required": Counter(), "optimal": Counter(), "check": Counter()}
    failures = []
    for tid, test in tests.items():
        if test.browser_only:
            continue
        g = grade(tid, tests, results)
        counts[test.kind][g] += 1
        if test.kind == "required" and g == FAIL:
            detail = results.get(tid)
            message = str(detail[1]) if isinstance(detail, list) and len(detail) > 1 else str(detail)
            failures.append((tid, message, documented.get(tid, "")))
    return Summary(counts["required"], counts["optimal"], counts["check"], tuple(failures))


def render(summary: Summary) -> str:
    r = summary.required
    lines = [
        f"required: {r[PASS]} passed, {r[FAIL]} failed of {summary.graded} graded "
        f"({100.0 * r[PASS] / summary.graded if summary.graded else 0.0:.1f}%); not graded: "
        f"{r[SETUP_FAIL]} setup failures, {r[DEPENDENCY_FAIL]} failed dependencies, {r[RETRY]} retries, "
        f"{r[HARNESS_FAIL]} harness failures, {r[UNTESTED]} untested",
        f"optimal: {summary.optimal[PASS]} passed, {summary.optimal[OPTIONAL_FAIL]} not optimal; "
        f"check: {summary.check[YES]} yes, {summary.check[NO]} no",
        f"required failures: {len(summary.failures)}, of which not documented by CloudFront: "
        f"{len(summary.undocumented)}",
    ]
    for tid, message, doc in summary.failures:
        lines.append(f"  {tid}: {message}")
        lines.append(f"      {'CloudFront: ' + doc if doc else 'NOT DOCUMENTED BY CLOUDFRONT'}")
    return "\n".join(lines)


# --- processes ------------------------------------------------------------------------------------------

class SuiteError(RuntimeError):
    """The suite cannot be run (message: what is missing and what to do)."""


_DUMP_TESTS = """
const tests = (await import(process.argv[1])).default;
const out = [];
for (const suite of tests) for (const t of suite.tests) out.push({id: t.id, name: t.name, suite: suite.id,
  kind: t.kind || 'required', depends_on: t.depends_on || [], browser_only: t.browser_only === true});
process.stdout.write(JSON.stringify(out));
"""


def check_suite(suite: Path) -> None:
    for rel in ("test-engine/cli.mjs", "test-engine/server/server.mjs", "tests/index.mjs"):
        if not (suite / rel).is_file():
            raise SuiteError(f"{suite} is not a checkout of http-tests/cache-tests ({rel} is missing). Next step: "
                             f"git clone https://github.com/http-tests/cache-tests {suite} (outside this repository)")


def find_node(explicit: str | None) -> Path:
    """``explicit``, else edgelab's Node.js (installed by ``edge.invocation.execution.node_dist`` if needed)."""
    if explicit:
        return Path(explicit)
    cmd = [sys.executable, "-m", "edge.invocation.execution.node_dist"]
    out = subprocess.run([*cmd, "install", str(NODE_MAJOR)], capture_output=True, text=True, check=False)
    if out.returncode == 0:
        out = subprocess.run([*cmd, "path", str(NODE_MAJOR)], capture_output=True, text=True, check=False)
    if out.returncode != 0 or not out.stdout.strip():
        detail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SuiteError(f"no Node.js {NODE_MAJOR} from edgelab's runtimes ({detail[0]}). Next step: "
                         f"python -m edge.invocation.execution.node_dist install {NODE_MAJOR}, or --node PATH")
    return Path(out.stdout.strip())


def ensure_dependencies(suite: Path, node: Path) -> None:
    """``npm install --omit=dev`` in the checkout when its dependencies are missing (the npm registry, now)."""
    if (suite / "node_modules" / "undici").is_dir():
        return
    npm = node.parent.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    if not npm.is_file():
        raise SuiteError(f"{node} comes without npm ({npm}): install the suite's dependencies yourself "
                         f"(cd {suite} && npm install --omit=dev)")
    print(f"installing the suite's npm dependencies into {suite}/node_modules ...", file=sys.stderr)
    out = subprocess.run([str(node), str(npm), "install", "--omit=dev", "--no-audit", "--no-fund"], cwd=suite,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SuiteError(f"npm install failed in {suite}: {out.stderr.strip()[-500:]}")


def load_tests(suite: Path, node: Path) -> dict[str, TestInfo]:
    out = subprocess.run([str(node), "--input-type=module", "-e", _DUMP_TESTS, "--",
                          (suite / "tests" / "index.mjs").as_uri()],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SuiteError(f"cannot read the suite's test list: {out.stderr.strip()[-500:]}")
    return {t["id"]: TestInfo(t["id"], t["name"], t["suite"], t["kind"], tuple(t["depends_on"]), t["browser_only"])
            for t in json.loads(out.stdout)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _npm_env(**config: str) -> dict[str, str]:
    """The environment ``npm run`` would give the suite's scripts (its package.json config, overridden)."""
    env = dict(os.environ)
    env.update({"npm_package_config_protocol": "http", "npm_package_config_port": "8000",
                "npm_package_config_base": "", "npm_package_config_id": "",
                "npm_package_config_pidfile": "/dev/null"})
    env.update({f"npm_config_{k}": v for k, v in config.items()})
    return env


async def _wait_listening(port: int, proc: asyncio.subprocess.Process, timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if proc.returncode is not None:
            raise SuiteError(f"the suite's server exited with status {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise SuiteError(f"the suite's server did not listen on port {port} within {timeout_s}s")


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def run_suite(suite: Path, node: Path, test_id: str = "") -> tuple[dict[str, Any] | None, str]:
    """Run the suite's client through a POP: (results, "") for the whole suite, (None, the client's dump) for
    ``test_id``."""
    from edge.cdn.config.distribution import load_distribution
    from edge.cdn.config.settings import OriginTarget, PopSettings, Settings
    from edge.cdn.server.pop import start_pop

    origin_port = free_port()
    with tempfile.TemporaryDirectory(prefix="edgelab-cache-tests-") as tmp:
        server = await asyncio.create_subprocess_exec(
            str(node), "test-engine/server/server.mjs", cwd=suite, stdout=asyncio.subprocess.DEVNULL,
            env=_npm_env(port=str(origin_port), protocol="http", pidfile=str(Path(tmp) / "server.pid")))
        try:
            await _wait_listening(origin_port, server)
            pop_settings = PopSettings("IAD", "us-east-1", "127.0.0.1", 0)
            settings = Settings(pops=(pop_settings,),
                                origins={ORIGIN_DOMAIN: OriginTarget(host="127.0.0.1", port=origin_port)},
                                state_dir=Path(tmp))
            pop = await start_pop(pop_settings, load_distribution(distribution_config(), settings), settings, port=0)
            try:
                client = await asyncio.create_subprocess_exec(
                    str(node), "--no-warnings", "test-engine/cli.mjs", cwd=suite, stdout=asyncio.subprocess.PIPE,
                    env=_npm_env(base=f"http://127.0.0.1:{pop.port}", id=test_id))
                try:
                    out, _ = await asyncio.wait_for(client.communicate(), CLI_TIMEOUT_S)
                except TimeoutError:
                    await _stop(client)
                    raise SuiteError(f"the suite's client did not finish within {CLI_TIMEOUT_S:.0f}s") from None
            finally:
                await pop.stop()
        finally:
            await _stop(server)
    text = out.decode("utf-8", "replace")
    if client.returncode != 0:
        raise SuiteError(f"the suite's client failed (exit {client.returncode}): {text[-500:]}")
    if test_id:
        return None, text
    return json.loads(text), ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cache_tests", description=__doc__.split("\n\n")[0])
    p.add_argument("suite", type=Path, help="a checkout of https://github.com/http-tests/cache-tests")
    p.add_argument("--id", default="", help="run one test and print the suite's dump of its requests")
    p.add_argument("--json", type=Path, help="also write the raw results (the suite's results/*.json format)")
    p.add_argument("--node", help="the node binary to use (default: edgelab's Node.js 20)")
    args = p.parse_args(argv)
    suite = args.suite.resolve()
    try:
        check_suite(suite)
        node = find_node(args.node)
        ensure_dependencies(suite, node)
        tests = load_tests(suite, node)
        if args.id and args.id not in tests:
            raise SuiteError(f"no test {args.id!r} in the suite")
        import uvloop

        results, dump = uvloop.run(run_suite(suite, node, args.id))
    except SuiteError as exc:
        print(f"cache-tests: {exc}", file=sys.stderr)
        return 2
    if results is None:
        print(dump)
        return 0
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    summary = summarize(tests, results)
    print(render(summary))
    return 1 if summary.undocumented else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
