"""The CloudFront Functions engine's short way (``FunctionEngine.invoke_request`` / ``invoke_response``): the
event's strings in, a result reduced to a delta out.

``request_fields`` / ``response_fields`` give the engine what it builds a viewer-request or viewer-response event
from (``prelude.js``, ``buildRequestEvent`` / ``buildResponseEvent``, do the rest of what
:func:`edge.cdn.cloudfront_functions.event.build_event` does), and ``apply_request_delta`` /
``apply_response_delta`` apply a result the engine could reduce to "the event's own object, header names added"
exactly as :mod:`edge.cdn.cloudfront_functions.event`'s full path (``apply_request_result`` /
``apply_response_result``) would, or answer None when that does not provably hold (the full path then raises the
exact error). tests/cdn/cloudfront_functions/test_request_delta.py and test_response_delta.py compare both paths on
random requests, responses and results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

from edge.cdn.cloudfront_functions.event import (
    _MAX_URL,
    _NAME_CHARS_RE,
    _VIEWER_REQUEST_NO_ADD,
    READ_ONLY,
    RequestResult,
    ResponseResult,
    _hidden,
    _names_and_values_valid,
    _unprepared,
)
from edge.cdn.cloudfront_functions.limits import VIEWER_REQUEST, VIEWER_RESPONSE
from edge.cdn.lambda_edge.rules import DISALLOWED_HEADERS, DISALLOWED_PREFIXES, HEADER_VALUE_BAD_RE, title_case
from edge.cdn.memo import remember
from edge.cdn.models import EdgeRequest, EdgeResponse, Headers, ResponseMeta, rewritten
from edge.cdn.responses import REPLACED
from edge.cdn.server.wire import HeaderBlock

__all__ = ["apply_request_delta", "apply_response_delta", "request_fields", "response_fields"]

# An added name that starts with a digit may be integer-like, which JavaScript orders before the others: the full
# path answers it (the engine leaves the check to Python, where it costs less).
_DIGITS = frozenset("0123456789")


def request_fields(request: EdgeRequest, *, distribution_domain: str, distribution_id: str, request_id: str) -> str | None:
    """What the engine builds a viewer-request event from (``FunctionEngine.invoke_request``; ``prelude.js``,
    ``buildRequestEvent``, does the rest of what :func:`build_event` does): the context's and the request's strings,
    whether the request is ``plain`` (:func:`apply_request_delta`: ``"1"`` or ``""``), and the name (lowercased) and
    value of every header :func:`build_event` shows the function, in order, joined by NUL. None when the engine's
    builder must not be used: a NUL in a string (it would shift the fields) or a non-ASCII character (where
    JavaScript's trimming differs from Python's) - :func:`build_event` and ``invoke`` then serve the request as
    before."""
    parts = [distribution_domain, distribution_id, request_id, request.client_ip, request.method, request.uri,
             request.querystring, ""]
    plain = True
    for name, value in request.headers:
        lname = name.lower()
        if lname in DISALLOWED_HEADERS or lname.startswith(DISALLOWED_PREFIXES):
            plain = False
            continue
        if lname == "cookie":
            plain = False
        parts.append(lname)
        parts.append(value)
    if plain:
        names = parts[8::2]
        if len(set(names)) == len(names):
            parts[7] = "1"
    return _nul_joined(parts)


def response_fields(response: EdgeResponse) -> str | None:
    """The response's part of what the engine builds a viewer-response event from (``FunctionEngine.invoke_response``,
    with :func:`request_fields` for the request's part; ``prelude.js``, ``buildResponseEvent``, does the rest of
    what :func:`build_event` does): the status code, the status description, and the name (lowercased) and value of
    every header, in order, joined by NUL. None when the engine's builder is not for this response (then
    :func:`build_event` and ``invoke`` serve it): a Set-Cookie (its cookies map is parsed here), a header the
    function would not see (hidden) or a name repeated (the engine's delta assumes every header is in the map,
    once), a NUL or a non-ASCII character.

    A cache hit's response carries its entry's serialised headers (``meta.header_block``, which describes exactly
    ``headers`` while it is set): its text is then computed once per entry, status and description."""
    meta = response.meta
    block = meta.header_block
    if meta.clean and block is not None and block.count == len(response.headers):
        key = (block, response.status, response.status_description)
        text = _ENTRY_FIELDS.get(key, "")
        if text == "":
            text = remember(_ENTRY_FIELDS, key, _fields_of(response.status, response.status_description,
                                                             response.headers), _ENTRY_FIELDS_MAX)
        return text
    return _fields_of(response.status, response.status_description, response.headers)


# response_fields of cache entries: (serialised headers, status, description) -> text (None: not for the engine)
_ENTRY_FIELDS: dict[tuple[HeaderBlock, int, str], str | None] = {}
_ENTRY_FIELDS_MAX = 1024


def _fields_of(status: int, description: str, headers: Sequence[tuple[str, str]]) -> str | None:
    parts = [str(status), description]
    for name, value in headers:
        lname = name.lower()
        if lname == "set-cookie" or _hidden(lname):
            return None
        parts.append(lname)
        parts.append(value)
    names = parts[2::2]
    if len(set(names)) != len(names):
        return None
    return _nul_joined(parts)


def _nul_joined(parts: list[str]) -> str | None:
    """``parts`` joined by NUL, or None when one of them holds a NUL (it would shift the fields) or a character
    that is not ASCII (where JavaScript's lowercasing and trimming differ from Python's)."""
    text = "\0".join(parts)
    if not text.isascii() or text.count("\0") != len(parts) - 1:
        return None
    return text


def apply_request_delta(original: EdgeRequest, uri: str, added: list[str], plain: bool = False) -> RequestResult | None:
    """:func:`apply_request_result` for a result the engine reduced to a delta, or None when the delta is not
    provably valid (the caller then applies the full result with :func:`apply_request_result`, which raises the
    exact error).

    The engine (``prelude.js``, ``requestDelta``) sends a delta only when the function returned the event's
    request object with the method, the query string, the cookies and every header entry as it got them (same
    order, same values, nothing added) and at most a new ``uri`` (a string) and header names appended
    (``added`` = ``[name, value, …]`` as returned). For such a result the full path's steps reduce to: validate
    the uri and the URL length; the appended names are new, allowed and writable; every header name and value is
    valid; merge. This does those steps with the full path's helpers, on the visible headers computed from the
    request as :func:`build_event` computes them (tests/cdn/cloudfront_functions/test_request_delta.py compares
    both paths on random requests and results).

    ``plain`` (``request_fields``' word for it): the function saw every header of the request, one entry per name
    (none hidden, no Cookie, no name repeated); then the merged headers are the request's as they came followed by
    the added ones, and only the added names need the checks that a name is new and allowed."""
    if not uri.startswith("/") or " " in uri or "#" in uri or HEADER_VALUE_BAD_RE.search(uri):
        return None
    raw_qs = original.querystring
    if len(uri) + len(raw_qs) + 1 >= _MAX_URL:
        return None
    if plain:
        return _plain_delta(original, uri, raw_qs, added)
    # one pass over the request's headers: what build_event shows the function (name -> values, in order, and the
    # first spelling of each name), what it hides (kept first by _merge_headers) and the Cookie lines (kept last)
    groups: dict[str, list[str]] = {}
    spelling: dict[str, str] = {}
    hidden: Headers = []
    cookie_lines: Headers = []
    visible_values: list[str] = []
    for name, value in original.headers:
        lname = name.lower()
        if lname == "cookie":
            cookie_lines.append((name, value))
        elif lname in DISALLOWED_HEADERS or lname.startswith(DISALLOWED_PREFIXES):
            hidden.append((name, value))
        else:
            visible_values.append(value)
            if (values := groups.get(lname)) is None:
                groups[lname] = [value]
                spelling[lname] = name
            else:
                values.append(value)
    names = list(groups)
    if not added:  # the full path: after == visible and the same Cookie lines -> the headers as they came
        # _check_header_pairs(visible) of the full path: every name and value valid
        if not _names_and_values_valid(names, visible_values):
            return None
        return RequestResult(rewritten(original, uri, raw_qs, list(original.headers)))
    new_forms: list[tuple[str, str]] = []
    for i in range(0, len(added) - 1, 2):
        forms = _addable_to_request(added[i])
        if forms is None or forms[0] in groups:
            return None
        new_forms.append(forms)
        names.append(forms[0])
        visible_values.append(added[i + 1])
    # _check_header_pairs(visible + new) of the full path, in one pass (the patterns test single characters)
    if not _names_and_values_valid(names, visible_values):
        return None
    # _merge_headers(non-cookie headers, visible, visible + new, "cookie", cookie_lines): hidden ones, the visible
    # ones grouped by name in their first spelling, the new ones title-cased, the Cookie lines
    merged = hidden
    for lname, values in groups.items():
        spelled = spelling[lname]
        for value in values:
            merged.append((spelled, value))
    for i, (_, titled) in enumerate(new_forms):
        merged.append((titled, added[2 * i + 1]))
    merged += cookie_lines
    return RequestResult(rewritten(original, uri, raw_qs, merged))


def _plain_delta(original: EdgeRequest, uri: str, raw_qs: str, added: list[str]) -> RequestResult | None:
    """:func:`apply_request_delta` for a ``plain`` delta: the same checks and the same merge, without grouping."""
    appended = _appended(original.headers, added, _addable_to_request)
    if appended is None:
        return None
    return RequestResult(rewritten(original, uri, raw_qs, appended[0]))


@lru_cache(maxsize=1024)
def _addable_to_request(raw: str) -> tuple[str, str] | None:
    """The lowercased and title-cased forms of a name a viewer-request function may add (a function adds the same
    few names on every call: memoised); None when the full path must answer: Cookie (cookies live in
    request.cookies), read-only, refused or hidden, not a token, or led by a digit."""
    name = raw.lower()
    if name == "cookie" or name in READ_ONLY[VIEWER_REQUEST] or name in _VIEWER_REQUEST_NO_ADD or _hidden(name):
        return None
    return _token_forms(name)


@lru_cache(maxsize=1024)
def _addable_to_response(raw: str) -> tuple[str, str] | None:
    """:func:`_addable_to_request` for a viewer-response function (Set-Cookie lives in response.cookies)."""
    name = raw.lower()
    if name == "set-cookie" or name in READ_ONLY[VIEWER_RESPONSE] or _hidden(name):
        return None
    return _token_forms(name)


def _token_forms(name: str) -> tuple[str, str] | None:
    if not name or name[0] in _DIGITS or _NAME_CHARS_RE.fullmatch(name) is None:
        return None
    return name, title_case(name)


def _appended(headers: Headers, added: list[str],
              addable: Callable[[str], tuple[str, str] | None]) -> tuple[Headers, list[str]] | None:
    """``headers`` followed by the ``added`` names (title-cased) and values, and the added names lowercased; None
    when an added name cannot be added (``addable``) or respells one of ``headers``, or a name or value is invalid
    (the full path's ``_check_header_pairs``)."""
    merged = list(headers)
    values = [value for _, value in headers]
    new_names: list[str] = []
    lowered: set[str] | None = None
    for i in range(0, len(added) - 1, 2):
        raw = added[i]
        forms = addable(raw)
        if forms is None:
            return None
        name, titled = forms
        if name != raw:  # another spelling of one of the headers? (a lowercase name is a new key of the map)
            if lowered is None:
                lowered = {n.lower() for n, _ in headers}
            if name in lowered:
                return None
        value = added[i + 1]
        new_names.append(name)
        values.append(value)
        merged.append((titled, value))
    if not _names_and_values_valid([name for name, _ in headers], values):
        return None
    return merged, new_names


def apply_response_delta(original: EdgeResponse, added: list[str]) -> ResponseResult | None:
    """:func:`apply_response_result` for a result the engine reduced to a delta (``prelude.js``, ``responseDelta``):
    the event's own response object came back with its status, description and cookies as they were, no body,
    every header entry as the function got it, and header names added (``added`` = ``[name, value, …]``, none
    another spelling of a header the response has). The full path's steps reduce to: the added names are new,
    allowed and writable; every header name and value is valid; the response's headers as they came, then the
    added ones title-cased. None when that does not hold (the caller applies the full result, which raises the
    exact error); tests/cdn/cloudfront_functions/test_response_delta.py compares both paths.

    A cache hit's response (its entry's serialised headers, ``meta.header_block``, describing exactly its headers)
    with the same names and values added as before is answered from what was worked out then (a viewer-response
    function adds the same headers to the same entry on every hit): :func:`_block_delta`."""
    meta = original.meta
    block = meta.header_block
    if meta.clean and block is not None and block.count == len(original.headers):
        known = _known_block_delta(original.headers, block, tuple(added))
        if known is None:
            return None
        tail, extended = known
        merged = original.headers + tail
        if extended is not None:
            # the serving step's prepared headers (a cache hit's) with the added ones after them: still free of what
            # the POP writes itself, so the entry's serialised lines stay and only the added ones are serialised
            return ResponseResult(EdgeResponse(original.status, merged, original.body, original.status_description,
                                               ResponseMeta(meta.origin_seconds, meta.content_length, meta.set_cookie,
                                                            meta.streamed, meta.generated_by, True, extended)))
        return ResponseResult(EdgeResponse(original.status, merged, original.body, original.status_description,
                                           _unprepared(meta)))
    appended = _appended(original.headers, added, _addable_to_response)
    if appended is None:
        return None
    return ResponseResult(EdgeResponse(original.status, appended[0], original.body, original.status_description,
                                       _unprepared(meta)))


# apply_response_delta of a cache entry's response: (its header block, the delta's names and values) -> what
# _block_delta worked out
_BLOCK_DELTAS: dict[tuple[HeaderBlock, tuple[str, ...]], tuple[Headers, HeaderBlock | None] | None] = {}
_BLOCK_DELTAS_MAX = 1024


def extended_block(headers: Sequence[tuple[str, str]], block: HeaderBlock, added: tuple[str, ...]) -> HeaderBlock | None:
    """The header block of :func:`apply_response_delta`'s result for a cache hit's response whose headers (``headers``,
    the entry's served form) ``block`` describes, with ``added``: None when it has none (the delta is not provably
    valid, or adds a name the POP writes itself: the response is serialised line by line)."""
    known = _known_block_delta(headers, block, added)
    return None if known is None else known[1]


def _known_block_delta(headers: Sequence[tuple[str, str]], block: HeaderBlock, added: tuple[str, ...]
                       ) -> tuple[Headers, HeaderBlock | None] | None:
    key = (block, added)
    if key in _BLOCK_DELTAS:
        return _BLOCK_DELTAS[key]
    return remember(_BLOCK_DELTAS, key, _block_delta(list(headers), block, list(added)), _BLOCK_DELTAS_MAX)


def _block_delta(headers: Headers, block: HeaderBlock, added: list[str]) -> tuple[Headers, HeaderBlock | None] | None:
    """For a response whose headers ``block`` describes: the added headers title-cased, and ``block`` extended with
    them when none is a name the POP writes itself (else None: the response's lines are serialised again); None when
    the delta is not provably valid (:func:`_appended`)."""
    appended = _appended(headers, added, _addable_to_response)
    if appended is None:
        return None
    merged, new_names = appended
    tail = merged[len(headers):]
    return tail, block.extended(tuple(tail)) if REPLACED.isdisjoint(new_names) else None
