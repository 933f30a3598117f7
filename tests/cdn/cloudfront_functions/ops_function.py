"""A CloudFront function for the tests that compare the engine's short way (edge.cdn.cloudfront_functions.delta)
with the full path: it applies the operations given as JSON in the event's request id (the short way builds the
event from strings, so the test's operations travel in one) to the event's request or response and returns it.
One engine serves every example, and the operations cover what functions do to a result (and what they should
not)."""

from __future__ import annotations


def ops_function(target: str) -> str:
    """The function's code; ``target`` is ``request`` or ``response``, the object the operations apply to."""
    return """function handler(event) {
  var r = event.TARGET, ops = JSON.parse(event.context.requestId);
  for (var i = 0; i < ops.length; i++) {
    var o = ops[i];
    if (o[0] === 'set') r.headers[o[1]] = o[2];
    else if (o[0] === 'del') delete r.headers[o[1]];
    else if (o[0] === 'value') { if (r.headers[o[1]]) r.headers[o[1]].value = o[2]; }
    else if (o[0] === 'readd') { var e = r.headers[o[1]]; delete r.headers[o[1]]; r.headers[o[1]] = e; }
    else if (o[0] === 'qs') r.querystring[o[1]] = o[2];
    else if (o[0] === 'cookie') r.cookies[o[1]] = o[2];
    else if (o[0] === 'field') r[o[1]] = o[2];
    else if (o[0] === 'prop') { if (r.headers[o[1]]) r.headers[o[1]][o[2]] = o[3]; }
    else if (o[0] === 'request') event.request.headers['x-r'] = {value: 'r'};
    else if (o[0] === 'copy') r = JSON.parse(JSON.stringify(r));
    else if (o[0] === 'log') console.log(o[1]);
  }
  return r;
}""".replace("TARGET", target)
