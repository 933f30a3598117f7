"""``edgelab cff``: test without a stack (any number of events, a store from an import file), create/publish/list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.control.cli.main import main

CODE = """import cf from 'cloudfront';
const kvs = cf.kvs();
async function handler(event) {
  const req = event.request;
  req.headers['x-route'] = {value: await kvs.get(req.uri)};
  return req;
}"""


def _event(tmp: Path, name: str, uri: str) -> Path:
    p = tmp / name
    p.write_text(json.dumps({"context": {"eventType": "viewer-request"},
                             "request": {"method": "GET", "uri": uri, "headers": {}}}))
    return p


def test_cff_test_runs_every_event_with_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, data = tmp_path / "fn.js", tmp_path / "kvs.json"
    code.write_text(CODE)
    data.write_text(json.dumps({"data": [{"key": "/a", "value": "A"}]}))
    status = main(["cff", "test", str(code), str(_event(tmp_path, "a.json", "/a")),
                   str(_event(tmp_path, "b.json", "/b")), "--kvs", str(data)])
    out = capsys.readouterr().out
    results = [json.loads(chunk) for chunk in out.replace("}\n{", "}\n\x00{").split("\x00")]
    assert status == 1  # /b is not in the store: kvs.get rejects, the function throws
    assert results[0]["FunctionOutput"]["request"]["headers"]["x-route"] == {"value": "A"}
    assert results[0]["FunctionErrorMessage"] == "" and results[1]["FunctionErrorMessage"]


def test_cff_test_reports_refused_syntax(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = tmp_path / "fn.js"
    code.write_text("function handler(event) { const x = 1; return event.request; }")
    assert main(["cff", "test", str(code), str(_event(tmp_path, "a.json", "/")), "--runtime", "cloudfront-js-1.0"]) == 1
    assert 'Token "const" not supported in this version' in capsys.readouterr().err


def test_cff_create_publish_list_on_the_state_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = tmp_path / "fn.js"
    code.write_text("function handler(event) { return event.request; }")
    state = ["--state-dir", str(tmp_path / "state")]
    assert main(["cff", "create", "f", str(code), "--comment", "c", *state]) == 0
    assert main(["cff", "publish", "f", *state]) == 0
    assert main(["cff", "create", "f", str(code), "--comment", "c2", "--publish", *state]) == 0  # update + publish
    capsys.readouterr()
    assert main(["cff", "list", "--stage", "LIVE", *state]) == 0
    [live] = json.loads(capsys.readouterr().out)
    assert (live["Name"], live["FunctionConfig"]["Comment"]) == ("f", "c2")
