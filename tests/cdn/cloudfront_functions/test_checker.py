"""The syntax gate per runtime (edge.cdn.cloudfront_functions.checker).

NJS_0_7_9 holds what Debian's njs 0.7.9 (the engine whose messages CloudFront shows) answered for each snippet
when the checker was written (``njs -q file.js``); the live cross-check re-asks njs when it is installed.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from edge.cdn.cloudfront_functions.checker import check_code

V1, V2 = "cloudfront-js-1.0", "cloudfront-js-2.0"

# snippet -> njs 0.7.9's SyntaxError text (None: accepted)
NJS_0_7_9 = {
    "var a=1; var o={a};": None,
    'var o={["k"+1]:1};': None,
    "var o={f(){return 1}};": None,
    "function f(a=1){}": 'SyntaxError: Unexpected token "=" in 1',
    "function f(...r){}": None,
    "var a=[1]; f(...a); function f(){}": 'SyntaxError: Unexpected token "..." in 1',
    "var b=[...[1]];": 'SyntaxError: Unexpected token "..." in 1',
    "class A{}": 'SyntaxError: Token "class" not supported in this version in 1',
    "function* g(){}": 'SyntaxError: Unexpected token "*" in 1',
    "var x = null ?? 1;": None,
    "var {a}= {a:1};": 'SyntaxError: Token "a" not supported in this version in 1',
    "var [q]=[1];": 'SyntaxError: Token "q" not supported in this version in 1',
    "var t=`x${1}`;": None,
    "var f=(a)=>a;": None,
    "var z=2**3;": None,
    "async function h(){ f(await 1); } function f(){}": "SyntaxError: await in arguments not supported in 1",
    "var o={get a(){return 1}};": None,
    "label: for(;;){break label;}": None,
    "var o={...{a:1}};": 'SyntaxError: Token "..." not supported in this version in 1',
    "try{}catch{}": 'SyntaxError: Token "{" not supported in this version in 1',
    "var b = 10n;": 'SyntaxError: Unexpected token "n" in 1',
    "async function h(){ for await (var x of []){} }": 'SyntaxError: Token "await" not supported in this version in 1',
    "var x = 1; x ||= 2;": 'SyntaxError: Unexpected token "=" in 1',
    "var x = null; x ??= 1;": 'SyntaxError: Unexpected token "=" in 1',
    "with ({}) {}": 'SyntaxError: Token "(" not supported in this version in 1',
    "export default 1;": "SyntaxError: Illegal export statement in 1",
    "var r = /a/s;": 'SyntaxError: Invalid RegExp flags "s" in 1',
    "var a = async () => 1;": None,
    "var s = '\\u{1F600}';": None,
    "var x = 0o17 + 0b11;": None,
    "var a = 1;\nfor (var x of [1,2]) {}": 'SyntaxError: Token "of" not supported in this version in 2',
}


@pytest.mark.parametrize("snippet", sorted(NJS_0_7_9))
def test_runtime_2_refuses_what_njs_refuses_with_its_message(snippet: str) -> None:
    result = check_code(snippet, V2)
    assert result.first_error == NJS_0_7_9[snippet]


@pytest.mark.skipif(shutil.which("njs") is None, reason="njs (Debian package) not installed: the recorded answers above still run")
@pytest.mark.parametrize("snippet", sorted(NJS_0_7_9))
def test_recorded_answers_match_a_live_njs(snippet: str, tmp_path) -> None:
    path = tmp_path / "t.js"
    path.write_text(snippet + "\n")
    out = subprocess.run(["njs", "-q", str(path)], capture_output=True, text=True, timeout=10)
    text = out.stdout + out.stderr
    expected = NJS_0_7_9[snippet]
    if expected is None:
        assert "SyntaxError" not in text
    else:
        assert expected.replace(" in 1", "").replace(" in 2", "") in text


def test_optional_chaining_is_refused_on_both_runtimes() -> None:
    for rt in (V1, V2):
        assert check_code("var o = {}; var y = o?.a;", rt).first_error == 'SyntaxError: Unexpected token "?." in 1'


@pytest.mark.parametrize(
    "snippet, message",
    [
        ("const a = 1;", 'SyntaxError: Token "const" not supported in this version in 1'),
        ("var x;\nlet a = 1;", 'SyntaxError: Token "let" not supported in this version in 2'),
        ("async function handler(e) { return e; }", 'SyntaxError: Token "async" not supported in this version in 1'),
        ("var n = 1_000;", 'SyntaxError: Unexpected token "_000" in 1'),
        ("import cf from 'cloudfront';", 'SyntaxError: Cannot find module "cloudfront" in 1'),
        ("var r = /a/y;", 'SyntaxError: Invalid RegExp flags "y" in 1'),
    ],
)
def test_runtime_1_refuses_what_only_2_allows(snippet: str, message: str) -> None:
    assert check_code(snippet, V1).first_error == message
    assert check_code(snippet.replace("1_000", "1000"), V2).ok or snippet.startswith("import")


def test_runtime_2_import_rules() -> None:
    ok = check_code("import cf from 'cloudfront';\nfunction handler(e) { return e.request; }", V2)
    assert ok.ok and ok.cloudfront_import is not None and ok.cloudfront_import.name == "cf"
    assert check_code("import fs from 'fs';", V2).first_error == 'SyntaxError: Cannot find module "fs" in 1'
    assert check_code("var a;\nimport cf from 'cloudfront';", V2).first_error == "SyntaxError: Illegal import statement in 2"
    assert check_code("import { kvs } from 'cloudfront';", V2).first_error == 'SyntaxError: Unexpected token "{" in 1'
    assert check_code("import * as cf from 'cloudfront';", V2).first_error == 'SyntaxError: Unexpected token "*" in 1'


def test_parse_errors_name_the_token_and_line() -> None:
    assert check_code("function handler(e) {\n  var x = ;\n}", V2).first_error == 'SyntaxError: Unexpected token ";" in 2'
    assert check_code("function handler(e) {", V2).first_error == "SyntaxError: Unexpected end of input in 1"
    assert check_code("return 1;", V2).first_error == "SyntaxError: Illegal return statement in 1"


def test_await_in_arguments_only_counts_in_the_same_function() -> None:
    code = "async function h() { f(function () { return 1; }); var x = await g(); return x; }"
    assert check_code(code, V2).ok


def test_real_world_function_passes() -> None:
    code = """import cf from 'cloudfront';
const kvsHandle = cf.kvs();
async function handler(event) {
    const request = event.request;
    const headers = request.headers;
    let key = request.uri.split('/')[1];
    let value = 'none';
    try { value = await kvsHandle.get(key); } catch (err) { console.log(`Kvs key lookup failed for ${key}: ${err}`); }
    if (headers.host && headers.host.value.indexOf('www.') === 0) {
        return { statusCode: 301, statusDescription: 'Moved Permanently',
                 headers: { location: { value: 'https://' + headers.host.value.slice(4) + request.uri } } };
    }
    request.headers['x-kvs'] = { value: value };
    return request;
}
"""
    assert check_code(code, V2).ok
    assert not check_code(code, V1).ok


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(ValueError, match=r"cloudfront-js-1\.0"):
        check_code("", "cloudfront-js-3.0")
