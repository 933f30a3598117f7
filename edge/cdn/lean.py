"""The short way to a fresh GET hit (issue 20: the POP's commonest answer, at its cost floor): what
``edge.cdn.pipeline.begin`` answers a GET of a behavior whose steps around the cache lookup do nothing, found without
its objects.

``lean_plan`` -> ``plain_hit`` (-> ``count_plain_hit``)
    no ``Exchange`` or ``EdgeRequest``: the behavior selected, the entry looked up, the caller writes it
    (``edge.cdn.server.respond.PopViewer._plain_hit``), then counts it as ``begin`` would have;
``function_again`` / ``function_first``
    the same after the behavior's viewer-request CloudFront function (``BehaviorPlan.lean_function``): an
    ``Exchange`` is needed to run it, and whatever the request it returns does not find goes on as in ``begin``
    (``pipeline.from_lookup``, or its generated response); without an ``Exchange`` when the runner kept what the
    same request went on with (``function_again``: its event answered from memory before, nothing reloaded since);
``hook_first`` -> ``hooked_hit``
    a GET of a ``BehaviorPlan.lean_hook`` behavior starts its viewer-request Lambda@Edge hook without ``begin`` (the
    ``Exchange`` is all ``begin`` makes before it), and the same lookup follows when the hook returned the request;
``last_again`` / ``function_last``
    the hit :func:`plain_hit` found, served through the behavior's viewer-response CloudFront function
    (``BehaviorPlan.lean_response``) and written as ``begin``'s answer is; without an ``Exchange`` when the runner kept
    the names and values the function added for the same request and entry (``last_again``).

When a step would do something (``BehaviorPlan.plain_hits`` / ``lean_function`` / ``lean_hook`` / ``lean_response``
say which behaviors have none but the function each names: no signed access, generated viewer header, response
headers policy or viewer-response Lambda@Edge hook; the distribution enabled, without a geographic restriction,
the viewer-location test header or a chaos scenario), or the request is conditional or ranged, or the entry is not
a fresh one of a status below 400 with a body, nothing is done or counted here and ``begin`` (or ``from_lookup``)
answers; ``tests/cdn/server/test_plain_hits.py`` checks the two ways answer the same bytes and counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from edge.cdn import pipeline
from edge.cdn.cache.keys import cache_key
from edge.cdn.cache.policy import CacheEntry, fresh_age
from edge.cdn.cache.ranges import CONDITIONAL_HEADERS
from edge.cdn.cache.store import VariantKey
from edge.cdn.cloudfront_functions.delta import extended_block
from edge.cdn.cloudfront_functions.errors import FUNCTION_GENERATED
from edge.cdn.config.plan import BehaviorPlan
from edge.cdn.errors import EdgeError, LambdaError
from edge.cdn.models import EdgeResponse
from edge.cdn.responses import HIT, HIT_TIMING_PREFIX
from edge.cdn.server.wire import EMPTY_BODY_STATUS, Framed, HeaderBlock, safe_value
from edge.cdn.steps import Exchange, Step, cloudfront_functions, geo, serving, viewer_request
from edge.cdn.steps.context import PopContext

if TYPE_CHECKING:
    from edge.cdn.cloudfront_functions.runner import CloudFrontFunctionRunner, Repeated
    from edge.cdn.pipeline import Resume

__all__ = [
    "Again",
    "AgainFrom",
    "Hit",
    "KeptHit",
    "count_plain_hit",
    "function_again",
    "function_first",
    "function_kept",
    "function_last",
    "hook_first",
    "hooked_hit",
    "keep_hit",
    "last_again",
    "lean_plan",
    "plain_hit",
]

Hit = tuple[CacheEntry, HeaderBlock, int]  # the entry, its served headers serialised, its age
# where a hit after a function's kept answer came from: the request the entry was looked up for (uri, query string,
# headers), and the function's runner with what it kept
AgainFrom = tuple[tuple[str, str, Sequence[tuple[str, str]]], tuple["CloudFrontFunctionRunner", "Repeated"]]
Again = tuple[Hit, str, AgainFrom]  # function_again / last_again: the hit, the function's Server-Timing entry, whence


def lean_plan(ctx: PopContext, uri: str, scheme: str) -> tuple[BehaviorPlan, str] | None:
    """The behavior of a GET of ``uri`` (origin-form, no fragment) over ``scheme`` and the URI after
    DefaultRootObject, when ``begin`` would do nothing for it but run its viewer-request CloudFront function before
    the cache lookup (``BehaviorPlan.lean_function``) or its viewer-response one after it (``lean_response``): the
    distribution enabled, without a geographic restriction, the viewer-location test header or a chaos scenario;
    the behavior's ``plain_hits``, ``lean_function`` or ``lean_response``, and its ViewerProtocolPolicy met
    (``steps.viewer_request.admit``: HTTP is answered with a redirect or a 403 when the behavior wants HTTPS and the
    POP has an HTTPS listener). None: ``begin`` runs."""
    dist = ctx.plans.distribution
    if not dist.enabled or dist.geo is not None or ctx.location_header or ctx.chaos is not None:
        return None
    if uri == "/" and dist.default_root_object:
        uri = "/" + dist.default_root_object
    plan = ctx.plans.match(uri)
    if not (plan.plain_hits or plan.lean_function or plan.lean_hook or plan.lean_response):
        return None
    if scheme != "https" and plan.behavior.viewer_protocol_policy != "allow-all" and ctx.https_port is not None:
        return None
    return plan, uri


def plain_hit(ctx: PopContext, plan: BehaviorPlan, uri: str, querystring: str, headers: Sequence[tuple[str, str]]
              ) -> Hit | None:
    """What ``begin``'s lookup finds for a GET of ``plan``'s behavior (:func:`lean_plan`; after its function, the
    request the function returned) when that is answered as the entry is: no conditional or range header, a stored
    entry of a status below 400 with a body, fresh (``evaluate``), with its served headers serialised
    (``serving.served_form``). Returns the entry, those headers and its age (the ``Hit``'s), having counted nothing:
    the caller answers, then calls :func:`count_plain_hit`. None: ``begin``'s lookup has to run (the store marked
    the entry recently used, which that lookup does too, and counted nothing)."""
    for k, _ in headers:  # served as the entry is: anything conditional or ranged goes through serve_entry
        if k.lower() in CONDITIONAL_HEADERS:
            return None
    dist = ctx.plans.distribution
    entry = ctx.store.peek(cache_key(dist.domain_name, plan.behavior.cache_policy, "GET", uri, querystring, headers),
                           headers)
    if entry is None or entry.status >= 400 or entry.is_error or entry.status in EMPTY_BODY_STATUS:
        return None
    age = fresh_age(entry, ctx.clock())  # evaluate's Hit
    if age is None:
        return None
    block = serving.served_form(entry)[1]
    return None if block is None else (entry, block, age)


_TENTHS = tuple(b"%d.%d" % divmod(n, 10) for n in range(1000))  # Server-Timing durations below 100 ms, in tenths


class KeptHit:
    """A plain hit's answer kept for the same read on the same connection (:func:`keep_hit`,
    ``PopViewer.again``): the context it was found in, where the store holds the entry (``CacheStore.variant_key``:
    to look it up again), the entry's served form (``CacheEntry.served``, made once per entry: the same object is the
    same entry, without keeping the entry's body alive once the store let it go), the function's kept answer it went
    through (``function``: its runner and what the runner kept, or None), and the response's head cut around what
    varies per request (the X-Amz-Cf-Id and the Server-Timing durations), re-cut when the age or the Date changes
    (once a second at most)."""

    __slots__ = ("age", "ctx", "date", "function", "head", "middle", "prefix", "served", "suffix", "variant")

    def __init__(self, ctx: PopContext, variant: VariantKey, served: object, head: Framed,
                 function: tuple[CloudFrontFunctionRunner, Repeated] | None) -> None:
        self.ctx, self.variant, self.served, self.head, self.function = ctx, variant, served, head, function
        self.age, self.date = -1, ""
        self.prefix = self.middle = self.suffix = b""

    def data(self, age: int, date: str, request_id: str, tenths: int, function_entry: bytes, body: bytes) -> bytes:
        """What ``PopViewer._write_hit`` writes for the entry's ``body`` at ``age`` with the Date ``date``
        (``HttpDate``'s string: a new one each second), the id ``request_id``, ``tenths`` of a millisecond in the
        POP's Server-Timing entry and the function's entry after it (``function_entry``: ``, `` and the entry, or
        nothing)."""
        if age != self.age or date is not self.date:
            self._cut(age, date)
        dur = _TENTHS[tenths] if tenths < 1000 else b"%.1f" % (tenths / 10)  # HIT_TIMING's "%.1f", but halves up
        return b"".join((self.prefix, request_id.encode(), self.middle, dur, function_entry, self.suffix, body))

    def _cut(self, age: int, date: str) -> None:
        lines = self.ctx.identity.decoration_lines(request_id="\x00", x_cache=HIT, server_timing=HIT_TIMING_PREFIX
                                                   + "\x01", age=age).encode()
        first, _, rest = lines.partition(b"\x00")
        self.middle, _, last = rest.partition(b"\x01")
        before, after, dated = self.head
        self.prefix = before + first
        self.suffix = b"".join((last, after, b"" if dated is None else date.encode() + dated))
        self.age, self.date = age, date


def keep_hit(ctx: PopContext, plan: BehaviorPlan, scheme: str, uri: str, querystring: str,
             headers: Sequence[tuple[str, str]], entry: CacheEntry, head: Framed | None,
             function: tuple[CloudFrontFunctionRunner, Repeated] | None = None) -> KeptHit | None:
    """What ``PopViewer.again`` needs to answer the same request again as :func:`plain_hit` found ``entry`` for
    ``uri``, ``querystring`` and ``headers`` (after ``function``'s kept answer: :func:`function_again`, the request
    the function went on with; :func:`last_again`, the request itself), ``head`` framed for its keep-alive answer:
    the same context and request give the same behavior, cache key and served form, so only the entry stored where
    it was found, its freshness and the function's kept answer (``CloudFrontFunctionRunner.current``) are looked at
    again (a new response under the same key, or one with other Vary names, is another entry), and whatever can
    change in the same context (``PopContext.chaos``, set by ``PopState.apply_chaos``). None when the answer depends
    on more: an HTTP request to a behavior that is not ``allow-all`` (``lean_plan`` sends it to ``begin`` once the
    POP has an HTTPS listener, which ``PopContext.https_port`` says)."""
    if head is None or (scheme != "https" and plan.behavior.viewer_protocol_policy != "allow-all"):
        return None
    key = cache_key(ctx.plans.distribution.domain_name, plan.behavior.cache_policy, "GET", uri, querystring, headers)
    variant = ctx.store.variant_key(key, headers)
    return None if variant is None or entry.served is None else KeptHit(ctx, variant, entry.served, head, function)


def function_kept(ctx: PopContext, function: tuple[CloudFrontFunctionRunner, Repeated]) -> bytes | None:
    """A kept answer's function (``KeptHit.function``) as :func:`function_again` / :func:`last_again` count it
    (the request and an invocation answered from memory) while its runner's kept answer is current; the function's
    Server-Timing entry after ``, `` (for ``KeptHit.data``). None, with nothing counted, once it is not."""
    runner, known = function
    t0 = time.perf_counter()
    if not runner.current(known):
        return None
    wall_ms = (time.perf_counter() - t0) * 1000.0
    ctx.stats.requests += 1
    return b", " + runner.answered_again(known, wall_ms).encode()


def count_plain_hit(ctx: PopContext, status: int, sent: int, counted: bool = False) -> None:
    """A :func:`plain_hit` answered with a body of ``sent`` bytes: counted as ``begin`` and its lookup count a hit
    (``counted``: the request itself was, by ``begin``)."""
    ctx.store.count_hit()
    stats = ctx.stats
    stats.count_hit(status, HIT, 0 if counted else 1)
    stats.bytes_sent += sent


def hook_first(ctx: PopContext, ex: Exchange, done: Callable[[EdgeResponse | LambdaError | None], object]) -> bool:
    """``begin`` for a GET of a ``BehaviorPlan.lean_hook`` behavior (``ex.plan``, from :func:`lean_plan`, which did
    ``admit``'s part: the root object, the behavior, its ViewerProtocolPolicy) up to its viewer-request hook, started
    without a task as ``pipeline.start_viewer_request`` starts it (``geo.locate`` first, as in ``begin``: without a
    restriction or the test header it only sets the POP's location; a lean behavior trusts no keys). True when
    started (the request counted, as ``begin`` counts it; ``done`` gets the hook's result, then :func:`hooked_hit`);
    False, with nothing counted: ``begin`` runs."""
    geo.locate(ctx, ex)
    if not viewer_request.start(ctx, ex, done):
        return False
    ctx.stats.requests += 1
    return True


def hooked_hit(ctx: PopContext, ex: Exchange) -> Hit | None:
    """After the viewer-request hook of a ``BehaviorPlan.lean_hook`` behavior returned the request (what
    ``pipeline.start_viewer_request``'s ``done`` gets as None): the fresh hit :func:`plain_hit` finds for it, for the
    caller to answer (then :func:`count_plain_hit`, ``counted``: ``begin`` counted the request); None, with nothing
    done: ``pipeline.after_viewer_request`` goes on."""
    plan = ex.plan
    if plan is None or not plan.lean_hook or ctx.chaos is not None or ex.request.method != "GET":
        return None
    return _hit_after_function(ctx, plan, ex)


def _hit_after_function(ctx: PopContext, plan: BehaviorPlan, ex: Exchange) -> Hit | None:
    """The fresh hit :func:`plain_hit` finds for the request a viewer-request function returned (``ex.request``;
    X-Cache set), when the Server-Timing entries the function added can be written as they are (``PopViewer._send``'s
    ``safe_value`` check on the rendered value, of which they are the only part not made by the POP); else None."""
    for entry in ex.timing.entries:  # (a loop: all() over a generator costs ~1k instructions more per hit)
        if not safe_value(entry):
            return None
    req = ex.request
    hit = plain_hit(ctx, plan, req.uri, req.querystring, req.headers)
    if hit is not None:
        ex.x_cache = HIT
    return hit


def function_again(ctx: PopContext, plan: BehaviorPlan, uri: str, querystring: str, client_ip: str,
                   headers: Sequence[tuple[str, str]]) -> Again | None:
    """:func:`function_first` for a GET of a ``BehaviorPlan.lean_function`` behavior whose function's answer to the
    same request the runner kept (``CloudFrontFunctionRunner.again``): the fresh hit :func:`plain_hit` finds for the
    request it went on with, and the function's Server-Timing entry, with the request and the invocation counted as
    :func:`function_first` counts them (the caller writes the hit, then :func:`count_plain_hit` with ``counted``),
    and what :func:`keep_hit` needs to keep the answer (``AgainFrom``: the request looked up is the one the function
    went on with). None, with nothing counted: :func:`function_first` runs."""
    functions = ctx.functions
    if functions is None:
        return None
    t0 = time.perf_counter()
    known = functions.again(plan.functions[Step.VIEWER_REQUEST], ctx.plans.distribution, uri, querystring, client_ip,
                            headers)
    if known is None:
        return None
    wall_ms = (time.perf_counter() - t0) * 1000.0
    went_uri, went_query, went_headers = known.went_on
    hit = plain_hit(ctx, plan, went_uri, went_query, went_headers)
    if hit is None:
        return None
    ctx.stats.requests += 1
    return hit, functions.answered_again(known, wall_ms), ((went_uri, went_query, went_headers), (functions, known))


def function_first(ctx: PopContext, ex: Exchange, ready: cloudfront_functions.Ready
                   ) -> tuple[EdgeResponse | None, Resume, Hit | None]:
    """``begin`` for a GET of a ``BehaviorPlan.lean_function`` behavior (``ex.plan``, from :func:`lean_plan`) whose
    viewer-request function is ready: the request counted, as ``begin`` counts it first, the function runs, then the
    request it returns is looked up as :func:`plain_hit` does: ``(None, None, hit)`` for the caller to answer (then
    :func:`count_plain_hit` with ``counted``), or else ``begin``'s own answer, ``(response, at, None)``."""
    ctx.stats.requests += 1
    try:
        generated = cloudfront_functions.viewer_request_now(ctx, ex, ready)
    except EdgeError as err:
        return None, err, None
    plan = ex.plan
    if generated is None and plan is not None:
        hit = _hit_after_function(ctx, plan, ex)
        if hit is not None:
            return None, None, hit
    if generated is not None:
        return pipeline.generated_response(ctx, ex, generated, FUNCTION_GENERATED), None, None
    response, at = pipeline.from_lookup(ctx, ex)
    return response, at, None


def last_again(ctx: PopContext, plan: BehaviorPlan, hit: Hit, uri: str, querystring: str, client_ip: str,
               headers: Sequence[tuple[str, str]]) -> Again | None:
    """:func:`function_last` for a fresh hit (:func:`plain_hit`) of a ``BehaviorPlan.lean_response`` behavior whose
    viewer-response function's answer to the same request and entry the runner kept (``CloudFrontFunctionRunner.again``
    with the entry's header block, status and no description, as ``serving.from_entry`` serves it): the hit with the
    header block of the response the function's names and values make (``delta.extended_block``) and the function's
    Server-Timing entry, the request and the invocation counted as :func:`function_last` counts them (the caller
    writes the hit, then :func:`count_plain_hit` with ``counted``), and what :func:`keep_hit` needs (``AgainFrom``).
    None, with nothing counted: ``function_last``."""
    functions = ctx.functions
    if functions is None:
        return None
    entry, block, age = hit
    t0 = time.perf_counter()
    known = functions.again(plan.functions[Step.VIEWER_RESPONSE], ctx.plans.distribution, uri, querystring, client_ip,
                            headers, block, entry.status, "")
    if known is None:
        return None
    wall_ms = (time.perf_counter() - t0) * 1000.0
    extended = extended_block(serving.served_form(entry)[0], block, known.went_on)
    if extended is None:
        return None
    ctx.stats.requests += 1
    return (entry, extended, age), functions.answered_again(known, wall_ms), ((uri, querystring, headers),
                                                                              (functions, known))


def function_last(ctx: PopContext, ex: Exchange, hit: Hit, ready: cloudfront_functions.Ready
                  ) -> tuple[EdgeResponse | None, Resume]:
    """``begin`` for a fresh hit (:func:`plain_hit`) of a ``BehaviorPlan.lean_response`` behavior (``ex.plan``) whose
    viewer-response function is ready: the request and the hit counted as ``begin`` and its lookup count them, the
    entry served (``serving.from_entry``) through the function; ``(response, None)``, answered and counted, or
    ``(None, err)`` for ``pipeline.resume`` (the function failed)."""
    entry, _, age = hit
    ctx.stats.requests += 1
    ctx.store.count_hit()
    try:
        response = serving.from_entry(ctx, ex, entry, HIT, age_s=age)  # below 400: not skipped (viewer_response)
        response = cloudfront_functions.viewer_response_now(ctx, ex, response, ready)
    except EdgeError as err:
        return None, err
    pipeline.count_answer(ctx, ex, response)
    return response, None
