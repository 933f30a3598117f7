"""Declared CloudFront functions: deploying is create-or-update + publish, idempotent, and errors name the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cdn.cloudfront_functions.db import CffDatabase
from edge.cdn.cloudfront_functions.functions import FunctionStore
from edge.cdn.cloudfront_functions.kvs import KeyValueStoreService
from edge.cdn.config.settings import CloudFrontFunctionDecl, parse_settings
from edge.control.stack.declared_cff import deploy_cloudfront_function


def test_settings_declare_directories_relative_to_the_settings_file(tmp_path: Path) -> None:
    s = parse_settings({"cloudfront_functions": [{"name": "rw", "dir": "fns/rw"}]}, tmp_path)
    assert s.cloudfront_functions == (CloudFrontFunctionDecl("rw", (tmp_path / "fns/rw").resolve()),)
    with pytest.raises(ValueError, match="cloudfront_functions"):
        parse_settings({"cloudfront_functions": [{"name": "a"}, {"name": "a"}]}, tmp_path)


def test_deploy_creates_publishes_and_is_idempotent(tmp_path: Path) -> None:
    d = tmp_path / "rw"
    d.mkdir()
    (d / "index.js").write_text("function handler(e) { return e.request; }")
    (d / "cloudfront-function.json").write_text(json.dumps({"runtime": "cloudfront-js-2.0", "key_value_store": "s"}))
    db = CffDatabase(tmp_path / "state")
    store, kvs = FunctionStore(db), KeyValueStoreService(db)
    decl = CloudFrontFunctionDecl("rw", d)
    first = deploy_cloudfront_function(store, kvs, decl)
    assert deploy_cloudfront_function(store, kvs, decl) == first  # unchanged files: nothing republished
    live = store.live("rw")
    assert live is not None and live.kvs_arn == kvs.describe("s")["KeyValueStore"]["ARN"]  # store created
    (d / "index.js").write_text("function handler(e) { e.request.uri = '/x'; return e.request; }")
    assert deploy_cloudfront_function(store, kvs, decl) != first
    (d / "cloudfront-function.json").write_text('{"runtime": "cloudfront-js-2.0", "extra": 1}')
    with pytest.raises(ValueError, match=r"cloudfront-function\.json"):
        deploy_cloudfront_function(store, kvs, decl)
    with pytest.raises(ValueError, match="cannot read"):
        deploy_cloudfront_function(store, kvs, CloudFrontFunctionDecl("gone", tmp_path / "gone"))
