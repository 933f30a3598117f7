"""bench.cache_tests: grading as the suite's result page grades, the summary and its CloudFront annotations, the
distribution the suite runs through, and the whole run (server, POP, client, summary) with a stand-in for Node.js
and the suite (a Python script playing server.mjs, cli.mjs and the test-list dump)."""

from __future__ import annotations

import stat
import sys
import textwrap
from pathlib import Path

import pytest

from bench import cache_tests as ct
from edge.cdn.config.distribution import load_distribution
from edge.cdn.config.settings import OriginTarget, Settings


def _tests() -> dict[str, ct.TestInfo]:
    def t(tid: str, kind: str = "required", deps: tuple[str, ...] = (), browser: bool = False) -> ct.TestInfo:
        return ct.TestInfo(tid, tid, "suite", kind, deps, browser)

    return {x.id: x for x in (
        t("base"), t("ok", deps=("base",)), t("bad"), t("setup"), t("retry"), t("abort"),
        t("needs-bad", deps=("bad",)), t("opt", "optimal"), t("opt-bad", "optimal"), t("chk", "check"),
        t("chk-no", "check"), t("needs-chk-no", deps=("chk-no",)), t("browser", browser=True), t("never"),
    )}


RESULTS = {
    "base": True, "ok": True, "bad": ["Assertion", "Response 2 comes from cache"],
    "setup": ["Setup", "Response 1 header Age is \"null\", not \"7200\""], "retry": ["Setup", "retry"],
    "abort": ["AbortError", "aborted"], "needs-bad": True, "opt": True, "opt-bad": ["Assertion", "x"],
    "chk": True, "chk-no": ["Assertion", "y"], "needs-chk-no": True, "browser": ["Assertion", "z"],
}


@pytest.mark.parametrize(("tid", "expected"), [
    ("base", ct.PASS), ("ok", ct.PASS), ("bad", ct.FAIL), ("setup", ct.SETUP_FAIL), ("retry", ct.RETRY),
    ("abort", ct.HARNESS_FAIL), ("needs-bad", ct.DEPENDENCY_FAIL), ("opt", ct.PASS), ("opt-bad", ct.OPTIONAL_FAIL),
    ("chk", ct.YES), ("chk-no", ct.NO), ("needs-chk-no", ct.DEPENDENCY_FAIL), ("never", ct.UNTESTED),
])
def test_grades_follow_the_suites_result_kinds(tid: str, expected: str) -> None:
    assert ct.grade(tid, _tests(), RESULTS) == expected


def test_summary_counts_required_tests_and_marks_documented_failures() -> None:
    summary = ct.summarize(_tests(), RESULTS, documented={"bad": "what CloudFront says, https://docs.aws"})
    assert summary.required[ct.PASS] == 2 and summary.required[ct.FAIL] == 1 and summary.graded == 3
    assert summary.required[ct.DEPENDENCY_FAIL] == 2 and summary.required[ct.UNTESTED] == 1
    assert summary.undocumented == ()  # the browser-only failure is not counted
    text = ct.render(summary)
    assert "required: 2 passed, 1 failed of 3 graded (66.7%)" in text
    assert "1 setup failures, 2 failed dependencies, 1 retries, 1 harness failures, 1 untested" in text
    assert "bad: Response 2 comes from cache\n      CloudFront: what CloudFront says, https://docs.aws" in text
    plain = ct.summarize(_tests(), RESULTS, documented={})
    assert [f[0] for f in plain.undocumented] == ["bad"] and "NOT DOCUMENTED BY CLOUDFRONT" in ct.render(plain)


def test_documented_failures_cite_aws_pages() -> None:
    assert ct.DOCUMENTED
    for tid, why in ct.DOCUMENTED.items():
        assert "https://docs.aws.amazon.com/" in why, tid


def test_the_distribution_loads_with_the_managed_policies() -> None:
    settings = Settings(pops=(), origins={ct.ORIGIN_DOMAIN: OriginTarget(host="127.0.0.1", port=1)})
    dist = load_distribution(ct.distribution_config(), settings)
    b = dist.default_behavior
    assert b.cache_policy.name == "UseOriginCacheControlHeaders-QueryStrings"
    assert b.origin_request_policy is not None and b.origin_request_policy.name == "AllViewerExceptHostHeader"
    assert b.allowed_methods == frozenset(ct.ALL_METHODS)


def test_a_directory_that_is_not_the_suite_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ct.main([str(tmp_path), "--node", sys.executable]) == 2
    assert "is not a checkout of http-tests/cache-tests" in capsys.readouterr().err


# A stand-in for Node.js running the suite: the test-list dump, the origin server (answers /test/* cacheably,
# counting requests) and the client (one test that passes when its second request is a cache hit, one that fails).
FAKE_NODE = """\
import http.server, json, os, sys, urllib.request
args = sys.argv[1:]
if "--input-type=module" in args:
    print(json.dumps([{"id": "hit", "name": "hit", "suite": "s", "kind": "required", "depends_on": [],
                       "browser_only": False},
                      {"id": "no-store", "name": "n", "suite": "s", "kind": "required", "depends_on": [],
                       "browser_only": False}]))
elif args[-1].endswith("server.mjs"):
    seen = []
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            body = str(len(seen)).encode()
            self.send_response(200)
            self.send_header("Cache-Control", "max-age=60")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    http.server.HTTPServer(("127.0.0.1", int(os.environ["npm_config_port"])), H).serve_forever()
else:
    base = os.environ["npm_config_base"]
    def get(path):
        with urllib.request.urlopen(base + path) as r:
            return r.headers["X-Cache"], r.read()
    first, second = get("/test/a"), get("/test/a")
    print(json.dumps({"hit": first[0].startswith("Miss") and second[0].startswith("Hit") and first[1] == second[1],
                      "no-store": ["Assertion", "Response 2 comes from cache"]}))
"""


def test_a_whole_run_through_a_pop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "cache-tests"
    for rel in ("test-engine/cli.mjs", "test-engine/server/server.mjs", "tests/index.mjs",
                "node_modules/undici/package.json"):
        (suite / rel).parent.mkdir(parents=True, exist_ok=True)
        (suite / rel).write_text("")
    node = tmp_path / "node"
    node.write_text(f"#!{sys.executable}\n" + textwrap.dedent(FAKE_NODE))
    node.chmod(node.stat().st_mode | stat.S_IEXEC)
    out_json = tmp_path / "results.json"
    assert ct.main([str(suite), "--node", str(node), "--json", str(out_json)]) == 1  # "no-store" is undocumented
    text = capsys.readouterr().out
    assert "required: 1 passed, 1 failed of 2 graded (50.0%)" in text
    assert "no-store: Response 2 comes from cache\n      NOT DOCUMENTED BY CLOUDFRONT" in text
    assert '"hit": true' in out_json.read_text()

