"""The QuickJS engine: results, isolation, limits, the runtime surface (edge.cdn.cloudfront_functions.engine)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.cdn.cloudfront_functions.engine import EngineLimits, FunctionEngine, KvsView

V1, V2 = "cloudfront-js-1.0", "cloudfront-js-2.0"


def event(event_type: str = "viewer-request") -> dict:
    return {
        "version": "1.0",
        "context": {"distributionDomainName": "d1.cloudfront.net", "distributionId": "E1", "eventType": event_type,
                    "requestId": "rid"},
        "viewer": {"ip": "203.0.113.7"},
        "request": {"method": "GET", "uri": "/a", "querystring": {}, "headers": {"host": {"value": "x.test"}},
                    "cookies": {}},
    }


def run(code: str, runtime: str = V2, **kw):
    return FunctionEngine("f", code, runtime).invoke(kw.pop("ev", None) or event(), **kw)


def test_handler_result_logs_and_utilization() -> None:
    inv = run("function handler(e) { var r = e.request; r.headers['x-a'] = {value: 'b'}; console.log('hi'); return r; }", V1)
    assert inv.ok, inv.error
    assert inv.value["headers"]["x-a"] == {"value": "b"}
    assert inv.logs == ["hi"]
    assert 0 <= inv.compute_utilization <= 100


def test_async_handler_and_promises() -> None:
    code = "async function handler(e) { var v = await Promise.resolve(7); e.request.uri = '/' + v; return e.request; }"
    assert run(code).value["uri"] == "/7"
    assert run("async function handler(e) { throw new TypeError('bad'); }").error == "TypeError: bad"


def test_refused_syntax_fails_at_execution_with_cloudfront_message() -> None:
    inv = run("function handler(e) {\n  for (var x of [1]) {}\n  return e.request;\n}")
    assert inv.error == 'SyntaxError: Token "of" not supported in this version in 2'


def test_exceptions_and_missing_handler() -> None:
    assert run("function handler(e) { throw new Error('boom'); }").error == "Error: boom"
    assert run("function handler(e) { throw 'str'; }").error == "Error: str"
    assert run("var handler = 1;").error == "TypeError: handler is not a function"
    assert run("function other(e) { return e; }").error == "TypeError: handler is not a function"


def test_state_does_not_leak_between_calls() -> None:
    engine = FunctionEngine("f", "var n = 0; function handler(e) { n++; e.request.uri = '/' + n; return e.request; }", V1)
    assert [engine.invoke(event()).value["uri"] for _ in range(3)] == ["/1", "/1", "/1"]
    engine = FunctionEngine("g", "function handler(e) { String.prototype.evil = 1; return e.request; }", V1)
    assert engine.invoke(event()).error.startswith("TypeError")
    assert run("function handler(e) { return {statusCode: 200, body: typeof ''.evil}; }").value["body"] == "undefined"
    engine = FunctionEngine("h", "function handler(e) { globalThis.leak = 1; return e.request; }", V1)
    assert engine.invoke(event()).error.startswith("TypeError")


def test_functions_do_not_share_anything() -> None:
    a = FunctionEngine("a", "function handler(e) { return e.request; }", V1)
    b = FunctionEngine("b", "function handler(e) { return {statusCode: 200, body: typeof a}; }", V1)
    assert a.invoke(event()).ok
    assert b.invoke(event()).value["body"] == "undefined"


@pytest.mark.parametrize(
    "expr",
    ["setTimeout", "setInterval", "setImmediate", "clearTimeout", "queueMicrotask", "process", "Map", "Set",
     "WeakMap", "Proxy", "Reflect", "BigInt", "WeakRef", "performance", "std", "os", "fetch", "XMLHttpRequest"],
)
def test_refused_globals_are_not_defined(expr: str) -> None:
    inv = run(f"function handler(e) {{ return {{statusCode: 200, body: String({expr})}}; }}")
    assert inv.error == f"ReferenceError: {expr} is not defined"


def test_eval_and_function_constructor_throw() -> None:
    assert run("function handler(e) { return eval('1'); }").error == "Error: eval is not supported"
    assert run("function handler(e) { return Function('return 1')(); }").error == "Error: Function constructor is not supported"
    assert run("function handler(e) { return (function(){}).constructor('return 1')(); }").error.startswith("Error: Function constructor")
    assert run("function handler(e) { return (async function(){}).constructor('return 1')(); }").error.startswith("Error: Function constructor")


def test_date_reads_return_the_start_time() -> None:
    code = "function handler(e) { return {statusCode: 200, body: [Date.now(), new Date().getTime(), new Date(5).getTime()].join()}; }"
    assert run(code, start_ms=1234).value["body"] == "1234,1234,5"


def test_loop_is_stopped_and_the_engine_keeps_serving() -> None:
    engine = FunctionEngine("loop", "function handler(e) { if (e.request.uri === '/loop') { for (;;) {} } return e.request; }",
                            V1, limits=EngineLimits(hard_time_limit_ms=5))
    ev = event()
    ev["request"]["uri"] = "/loop"
    inv = engine.invoke(ev)
    assert inv.limit_exceeded == "time" and inv.compute_utilization == 100
    assert "maximum allowed compute time" in inv.error
    assert engine.invoke(event()).ok


def test_async_loop_is_stopped() -> None:
    code = "async function handler(e) { for (var i = 0; ; i++) { await i; } }"
    inv = FunctionEngine("aloop", code, V2, limits=EngineLimits(hard_time_limit_ms=5)).invoke(event())
    assert inv.limit_exceeded == "time"


def test_big_allocation_is_stopped_and_the_engine_keeps_serving() -> None:
    code = ("function handler(e) { if (e.request.uri === '/big') { var a = []; for (;;) { a.push('xxxxxxxxxxxxxxxx' + a.length); } }"
            " return e.request; }")
    # a CPU limit far above the default: on a loaded machine the 2 MB are otherwise reached after the default CPU
    # limit (seen on a fresh machine's first run: 'time' instead of 'memory')
    engine = FunctionEngine("alloc", code, V1, limits=EngineLimits(hard_time_limit_ms=2000))
    ev = event()
    ev["request"]["uri"] = "/big"
    inv = engine.invoke(ev)
    assert inv.limit_exceeded == "memory", inv
    assert "memory limit" in inv.error
    assert engine.invoke(event()).ok
    # 800 KB of data fits in the 2 MB limit
    fits = "function handler(e) { var a = []; for (var i = 0; i < 500; i++) { a.push(new Array(100).fill(i)); } return e.request; }"
    assert run(fits, V1).ok


def test_cyclic_garbage_never_reaches_the_memory_limit() -> None:
    """Each call leaves 4 KB in a reference cycle (freed only by QuickJS's collector, which runs by itself when the
    heap grows): 2,000 calls make 8 MB of such garbage, four times the 2 MB a call may use, and every call works
    with the heap staying bounded."""
    code = ("function handler(e) { var a = {}, b = {a: a, pad: 'x'.repeat(4096) + e.request.uri}; a.b = b;"
            " return e.request; }")
    engine = FunctionEngine("cycles", code, V1)
    engine.prepare()
    resting = engine._ctx.memory()["malloc_size"]
    sizes = []
    for i in range(2000):
        inv = engine.invoke(event())
        assert inv.ok, (i, inv)
        if i % 100 == 0:
            sizes.append(engine._ctx.memory()["malloc_size"])
    assert engine.rebuilds == 1  # never stopped for memory
    assert max(sizes) < resting + 1024 * 1024, (resting, sizes)


def test_deep_recursion_is_a_range_error() -> None:
    inv = run("function f() { return f() + 1; } function handler(e) { return f(); }")
    assert inv.error.startswith("RangeError") or inv.error.startswith("InternalError")


def test_require_modules() -> None:
    assert run("function handler(e) { require('fs'); }").error == 'Error: Cannot find module "fs"'
    assert run("function handler(e) { require('buffer'); }", V1).error == 'Error: Cannot find module "buffer"'
    code = "function handler(e) { return {statusCode: 200, body: typeof require('buffer').Buffer.from}; }"
    assert run(code).value["body"] == "function"


def test_runtime_1_lacks_the_2_0_additions() -> None:
    for expr in ("Buffer", "TextEncoder", "atob", "btoa"):
        assert run(f"function handler(e) {{ return String({expr}); }}", V1).error == f"ReferenceError: {expr} is not defined"
    assert run("function handler(e) { return {statusCode: 200, body: typeof ''.replaceAll}; }", V1).value["body"] == "undefined"
    assert run("function handler(e) { return {statusCode: 200, body: typeof ''.replaceAll}; }", V2).value["body"] == "function"


def _digest(runtime: str, alg: str, data: str, key: str | None, enc: str) -> object:
    create = f"createHmac('{alg}', {json.dumps(key)})" if key is not None else f"createHash('{alg}')"
    code = f"function handler(e) {{ return {{statusCode: 200, body: require('crypto').{create}.update({json.dumps(data)}).digest('{enc}')}}; }}"
    inv = run(code, runtime)
    assert inv.ok, inv.error
    return inv.value["body"]


@settings(max_examples=25, deadline=None)
@given(data=st.text(max_size=200), alg=st.sampled_from(["md5", "sha1", "sha256"]), key=st.none() | st.text(max_size=100))
def test_crypto_matches_hashlib(data: str, alg: str, key: str | None) -> None:
    raw = data.encode("utf-8", "surrogatepass")
    if key is not None and any(0xD800 <= ord(c) < 0xE000 for c in key):
        return  # lone surrogates have no UTF-8 form
    expected = (hmac.new(key.encode(), raw, alg) if key is not None else hashlib.new(alg, raw)).digest()
    assert _digest(V2, alg, data, key, "hex") == expected.hex()
    assert _digest(V2, alg, data, key, "base64") == base64.b64encode(expected).decode()
    assert _digest(V1, alg, data, key, "base64url") == base64.urlsafe_b64encode(expected).decode().rstrip("=")


def test_digest_without_encoding_is_a_buffer_on_2_and_a_byte_string_on_1() -> None:
    code = "function handler(e) { var d = require('crypto').createHash('md5').update('a').digest(); return {statusCode: 200, body: %s}; }"
    assert run(code % "String(Buffer.isBuffer(d)) + d.toString('hex')").value["body"] == "true" + hashlib.md5(b"a").hexdigest()
    assert run(code % "String(d.length)", V1).value["body"] == "16"


def test_querystring_module() -> None:
    code = ("function handler(e) { var qs = require('querystring'); var p = qs.parse('a=1&a=2&b=%20x+y&c');"
            " return {statusCode: 200, body: JSON.stringify(p) + '|' + qs.stringify({x: ['1', '2'], y: 'a b', z: ''})}; }")
    assert run(code, V1).value["body"] == '{"a":["1","2"],"b":" x y","c":""}|x=1&x=2&y=a%20b&z='


def test_buffer_basics() -> None:
    code = """function handler(e) {
      var b = Buffer.from('héllo', 'utf8');
      var parts = [b.length, b.toString('hex'), b.toString('base64'), Buffer.from('aGk', 'base64url').toString(),
                   Buffer.concat([Buffer.from('a'), Buffer.from('b')]).toString(), Buffer.byteLength('é'),
                   Buffer.alloc(4).writeUInt32BE(0x01020304, 0), Buffer.from([1, 2, 3, 4]).readUInt32LE(0),
                   Buffer.isEncoding('latin1'), new TextDecoder().decode(new TextEncoder().encode('ü')), btoa('hi'), atob('aGk=')];
      return {statusCode: 200, body: parts.join('|')};
    }"""
    assert run(code).value["body"] == "6|68c3a96c6c6f|aMOpbGxv|hi|ab|2|4|67305985|false|ü|aGk=|hi"


def test_console_log_one_argument_on_2_and_truncation_at_10_kb() -> None:
    assert run("function handler(e) { console.log('a', 'b'); return e.request; }").logs == ["a"]
    assert run("function handler(e) { console.log('a', 'b'); return e.request; }", V1).logs == ["a b"]
    inv = run("function handler(e) { for (var i = 0; i < 30; i++) console.log(new Array(1000).join('x')); return e.request; }")
    assert inv.logs_truncated and sum(len(x) for x in inv.logs) == 10240


def test_kvs_get_exists_meta_and_reload_on_a_new_generation() -> None:
    code = """import cf from 'cloudfront';
const kvs = cf.kvs();
async function handler(e) {
  var out = [await kvs.get('k'), (await kvs.get('j', {format: 'json'})).a, (await kvs.get('k', {format: 'bytes'})).length,
             await kvs.exists('k'), await kvs.exists('nope'), (await kvs.meta()).keyCount];
  try { await kvs.get('nope'); } catch (err) { out.push(String(err)); }
  return {statusCode: 200, body: out.join('|')};
}"""
    engine = FunctionEngine("kvs", code, V2)
    view = KvsView("id1", 1, {"k": "vé", "j": '{"a": 5}'}, {"keyCount": 2})
    assert engine.invoke(event(), kvs=view).value["body"] == 'vé|5|3|true|false|2|Error: Key "nope" does not exist'
    view2 = KvsView("id1", 2, {"k": "new", "j": '{"a": 6}', "nope": "here"}, {"keyCount": 3})
    assert engine.invoke(event(), kvs=view2).value["body"] == "new|6|3|true|true|3"
    assert engine.invoke(event(), kvs=None).error.startswith("Error: No key value store is associated")


def test_kvs_handle_by_id() -> None:
    code = "import cf from 'cloudfront';\nasync function handler(e) { return {statusCode: 200, body: await cf.kvs('%s').get('k')}; }"
    view = KvsView("id1", 1, {"k": "v"}, {})
    assert FunctionEngine("a", code % "id1", V2).invoke(event(), kvs=view).value["body"] == "v"
    assert "not associated" in FunctionEngine("b", code % "other", V2).invoke(event(), kvs=view).error


def test_origin_helpers_are_recorded_in_viewer_request_only() -> None:
    code = """import cf from 'cloudfront';
function handler(e) {
  cf.updateRequestOrigin({domainName: 'example.org', originPath: '/p'});
  cf.selectRequestOriginById('o2', {hostHeader: 'h.test'});
  cf.createRequestOriginGroup({originIds: ['o1', 'o2'], failoverCriteria: {statusCodes: [500]}});
  return e.request;
}"""
    inv = run(code, edge_location={"name": "IAD"})
    assert [op[0] for op in inv.origin_ops] == ["updateRequestOrigin", "selectRequestOriginById", "createRequestOriginGroup"]
    assert inv.origin_ops[0][1] == {"domainName": "example.org", "originPath": "/p"}
    ev = event("viewer-response")
    ev["response"] = {"statusCode": 200, "statusDescription": "OK", "headers": {}, "cookies": {}}
    assert "viewer-request" in run(code, ev=ev).error


def test_edge_location_and_raw_query_string() -> None:
    code = ("import cf from 'cloudfront';\nfunction handler(e) { return {statusCode: 200, body: cf.edgeLocation.name + '|' +"
            " e.request.rawQueryString() + '|' + typeof cf.distributionTenant}; }")
    inv = run(code, edge_location={"name": "FRA", "serverIp": "127.0.0.1", "region": "eu-central-1"}, raw_query="a=1")
    assert inv.error == "TypeError: distributionTenant module is not available"
    code = "import cf from 'cloudfront';\nfunction handler(e) { return {statusCode: 200, body: cf.edgeLocation.name + '|' + e.request.rawQueryString()}; }"
    assert run(code, edge_location={"name": "FRA"}, raw_query="a=1").value["body"] == "FRA|a=1"
    assert run(code, edge_location={"name": "FRA"}, raw_query=None).value["body"] == "FRA|undefined"


def test_runtime_1_has_no_cloudfront_module_even_through_the_wrapper() -> None:
    assert run("function handler(e) { return {statusCode: 200, body: typeof __cf_module}; }", V1).value["body"] == "undefined"


def test_kvs_keys_named_like_prototype_members_are_plain_keys() -> None:
    code = "import cf from 'cloudfront';\nasync function handler(e) { return {statusCode: 200, body: [await cf.kvs().get('__proto__'), await cf.kvs().exists('toString')].join()}; }"
    view = KvsView("id", 1, {"__proto__": "p"}, {})
    assert run(code, kvs=view).value["body"] == "p,false"


def test_a_promise_that_never_settles_is_an_execution_error() -> None:
    assert run("function handler(e) { return new Promise(function () {}); }").error == "Error: the handler's promise never settled"


def test_overriding_common_members_on_own_objects_works_despite_frozen_intrinsics() -> None:
    code = """function handler(e) {
  var o = {}; o.toString = function () { return 'mine'; };
  function MyError(m) { this.message = m; this.name = 'MyError'; }
  MyError.prototype = Object.create(Error.prototype); MyError.prototype.constructor = MyError;
  var err = new MyError('m');
  var a = [1]; a.push = function () { return 'p'; };
  return {statusCode: 200, body: [String(o), err.name, err.message, a.push(), [2].push(3)].join()};
}"""
    assert run(code, V1).value["body"] == "mine,MyError,m,p,2"
    assert run("function handler(e) { Object.prototype.toString = function () {}; }", V1).error.startswith("TypeError")
    assert run("function handler(e) { Array.prototype.push = 1; }", V1).error.startswith("TypeError")


def test_runtime_1_byte_string_methods_and_memory_error() -> None:
    code = """function handler(e) {
  var parts = [String.bytesFrom([0x68, 0x69]), String.bytesFrom('6869', 'hex'), String.bytesFrom('aGk=', 'base64'),
               'é'.toUTF8().length, 'é'.toUTF8().fromUTF8(), '\\xff\\xfe'.fromUTF8(), 'ab'.toBytes(), 'ĀB'.toBytes(),
               new MemoryError('m').name, new MemoryError('m') instanceof Error];
  return {statusCode: 200, body: parts.join('|')};
}"""
    assert run(code, V1).value["body"] == "hi|hi|hi|2|é||ab||MemoryError|true"
    for method in ("''.toUTF8", "String.bytesFrom", "MemoryError"):
        assert run(f"function handler(e) {{ return {{statusCode: 200, body: typeof {method}}}; }}").value["body"] == "undefined"
