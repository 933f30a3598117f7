"""What a POP derives from its distribution once, when the configuration loads: one :class:`BehaviorPlan` per cache
behavior, in a :class:`DistributionPlan` that selects them by path.

A plan holds everything the request path needs from a behavior and would otherwise recompute per request:
the store context of the cache policy, what is forwarded to the origin (:class:`Forwarding`), the target
origin and its Lambda@Edge ``origin`` record, the CloudFront-generated viewer headers the policies select, the
methods the cache serves, and which event types run a function (Lambda@Edge ``hooks``; CloudFront Functions
``functions``, kept even without a runner so that a POP that cannot run them says so instead of skipping them).
Plans never change; a new distribution means new plans. Functions are not resolved here: the trigger runner
resolves each association against the registry on every call (a version published through the API takes effect without a restart).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from edge.cdn.cache.policy import StoreContext
from edge.cdn.config.behaviors import match_behavior
from edge.cdn.config.distribution import Behavior, CffAssociation, Distribution, LambdaAssociation, OriginSpec
from edge.cdn.config.policies import GENERATED_HEADERS, KeyList, cloudfront_owned
from edge.cdn.memo import remember
from edge.cdn.models import Origin

__all__ = ["BehaviorPlan", "DistributionPlan", "Forwarding", "compile_distribution", "compress_codings",
           "forwarding_lists", "generated_header_names", "named_headers"]

# Header-forwarding behaviors that mean "every viewer header".
_ALL = frozenset({"all", "allViewer", "allViewerAndWhitelistCloudFront"})
# Methods CloudFront can answer from its cache (CachedMethods may list GET, HEAD and OPTIONS).
_CACHE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def forwarding_lists(behavior: Behavior) -> tuple[tuple[KeyList, ...], tuple[KeyList, ...], tuple[KeyList, ...]]:
    """(headers, cookies, query strings) rules whose union says what is forwarded to the origin: cache-key
    values are always forwarded, origin-request-policy values in addition (contract §5.2, "Control origin
    requests with a policy",
    https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/controlling-origin-requests.html)."""
    cp, orp = behavior.cache_policy, behavior.origin_request_policy
    heads, cooks, qss = [cp.headers], [cp.cookies], [cp.query_strings]
    if orp is not None:
        heads.append(orp.headers)
        cooks.append(orp.cookies)
        qss.append(orp.query_strings)
    if cp.legacy and cp.forward_query_strings:
        qss.append(KeyList("all"))
    return tuple(heads), tuple(cooks), tuple(qss)


@dataclass(frozen=True, slots=True)
class Forwarding:
    """What a behavior forwards to the origin: the rules of :func:`forwarding_lists`, with the header rules
    compiled to sets (``name in forwarding`` says whether the policies select the viewer header ``name``,
    lower-case).

    ``only_selected``: a behavior with a cache policy forwards the viewer headers its policies select and nothing
    more ("Other information from the viewer request, such as URL query strings, HTTP headers, and cookies, is
    not included in the origin request by default. (Exception: With legacy cache settings, CloudFront forwards
    the headers to your origin by default.)", "Control origin requests with a policy",
    https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/controlling-origin-requests.html); legacy
    ForwardedValues forward the other headers as the table of "Request and response behavior for custom origins"
    says. ``authorization``: ``Authorization`` reaches the origin only from the cache key, or from an origin request
    policy forwarding all viewer headers when caching is disabled ("Configure CloudFront to forward the
    Authorization header", https://repost.aws/knowledge-center/cloudfront-authorization-header). ``generated``:
    the CloudFront-owned headers this behavior generates (the only ones that may reach the origin).
    """

    heads: tuple[KeyList, ...]
    cookies: tuple[KeyList, ...]
    queries: tuple[KeyList, ...]
    forward_all: bool  # every viewer header (AllViewer...)
    cookies_none: bool
    queries_all: bool
    queries_none: bool
    gzip: bool  # the cache policy's EnableAcceptEncodingGzip / -Brotli: Accept-Encoding is normalised
    brotli: bool
    header_names: frozenset[str]  # lower-case names a whitelist forwards
    all_except: tuple[frozenset[str], ...]  # per allExcept rule, the lower-case names it does not forward
    only_selected: bool = False  # a cache policy: no viewer header the policies do not select
    authorization: bool = False  # the viewer's Authorization is forwarded
    generated: frozenset[str] = frozenset()  # lower-case CloudFront-owned names the behavior generates

    @classmethod
    def of(cls, behavior: Behavior) -> Forwarding:
        heads, cookies, queries = forwarding_lists(behavior)
        names = frozenset(n.lower() for kl in heads if kl.behavior == "whitelist" for n in kl.names)
        all_except = tuple(frozenset(n.lower() for n in kl.names) for kl in heads if kl.behavior == "allExcept")
        policy = behavior.cache_policy
        forward_all = any(r.behavior in _ALL for r in heads) or (policy.legacy and policy.forward_all_headers)
        return cls(heads=heads, cookies=cookies, queries=queries, forward_all=forward_all,
                   cookies_none=all(r.behavior == "none" for r in cookies),
                   queries_all=any(r.behavior == "all" for r in queries),
                   queries_none=all(r.behavior == "none" for r in queries),
                   gzip=policy.gzip, brotli=policy.brotli, header_names=names, all_except=all_except,
                   only_selected=not policy.legacy,
                   authorization="authorization" in names or (forward_all and policy.caching_disabled),
                   generated=frozenset(n.lower() for n in generated_header_names(behavior)))

    def __contains__(self, lname: object) -> bool:
        """Whether the rules forward the viewer header ``lname`` (lower-case), as ``KeyList.includes`` decides."""
        if self.forward_all or lname in self.header_names:
            return True
        return any(lname not in excluded for excluded in self.all_except) if self.all_except else False


def named_headers(behavior: Behavior) -> frozenset[str]:
    """The lower-case header names the behavior's cache policy or origin request policy lists."""
    lists = [behavior.cache_policy.headers]
    if behavior.origin_request_policy is not None:
        lists.append(behavior.origin_request_policy.headers)
    return frozenset(n.lower() for kl in lists for n in kl.names)


def compress_codings(behavior: Behavior) -> tuple[bool, bool] | None:
    """``(gzip, brotli)``: the codings ``Compress`` uses on this behavior, or None when it never compresses: the
    cache policy must enable EnableAcceptEncodingGzip/Brotli and allow caching (TTLs above 0); legacy cache
    settings compress with gzip only ("Brotli doesn't support legacy cache settings", "Serve compressed files",
    https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/ServingCompressedFiles.html;
    ``edge.cdn.steps.compress``)."""
    policy = behavior.cache_policy
    if not behavior.compress or policy.caching_disabled or policy.max_ttl == 0:
        return None
    brotli = policy.brotli and not policy.legacy
    return (policy.gzip, brotli) if policy.gzip or brotli else None


def generated_header_names(behavior: Behavior) -> tuple[str, ...]:
    """The CloudFront-generated viewer headers (contract §5.5) the behavior's cache policy or origin request
    policy names explicitly, in CloudFront's order."""
    lists = [behavior.cache_policy.headers]
    if behavior.origin_request_policy is not None:
        lists.append(behavior.origin_request_policy.headers)
    out = []
    for lname, name in GENERATED_HEADERS.items():
        for kl in lists:
            if kl.behavior in ("whitelist", "allViewerAndWhitelistCloudFront") and any(
                    n.lower() == lname for n in kl.names):
                out.append(name)
                break
    return tuple(out)


@dataclass(frozen=True, slots=True)
class BehaviorPlan:
    """One cache behavior as the request path uses it (see the module docstring)."""

    behavior: Behavior
    origin: OriginSpec  # the behavior's target origin
    edge_origin: Origin  # its Lambda@Edge ``origin`` record (what an origin-request function sees and may replace)
    store: StoreContext  # what storability needs from the behavior and the distribution
    forwarding: Forwarding
    viewer_headers: tuple[str, ...]  # CloudFront-generated viewer headers to add (generated_header_names)
    # a policy names a CloudFront-owned header (cloudfront_owned): the viewer's copies are dropped before the
    # cache key, whether CloudFront generates that header here or not (edge.cdn.steps.viewer_headers)
    scrub_owned: bool
    cached_methods: frozenset[str]  # methods served from / stored in the cache; empty when caching is disabled
    compress: tuple[bool, bool] | None  # (gzip, brotli) when Compress applies (compress_codings)
    hooks: Mapping[str, LambdaAssociation]  # event type -> the association whose function runs there
    functions: Mapping[str, CffAssociation]  # viewer event -> its CloudFront function (FunctionAssociations)
    failover: Origin | None = None  # an origin group's secondary (Lambda@Edge record), when the target is a group
    failover_statuses: frozenset[int] = frozenset()  # the group's FailoverCriteria.StatusCodes
    # nothing between the viewer and a fresh GET hit's entry: no viewer-side function or hook, no signed access, no
    # generated viewer header nor a policy naming a CloudFront-owned one, no response headers policy, GET cached
    # (``edge.cdn.lean``); the same but for a viewer-request CloudFront function (``lean_function``), a
    # viewer-request Lambda@Edge hook (``lean_hook``) or a viewer-response CloudFront function (``lean_response``)
    plain_hits: bool = False
    lean_function: bool = False
    lean_hook: bool = False
    lean_response: bool = False

    @classmethod
    def of(cls, distribution: Distribution, behavior: Behavior, *, hooks: bool = True) -> BehaviorPlan:
        """The plan of ``behavior``; ``hooks=False`` for a POP without a trigger runner (no function runs)."""
        spec = distribution.origin_for(behavior)
        group = distribution.failover_for(behavior)
        cached = frozenset() if behavior.cache_policy.caching_disabled else behavior.cached_methods & _CACHE_METHODS
        associations = {a.event_type: a for a in behavior.lambda_associations} if hooks else {}
        functions = {a.event_type: a for a in behavior.function_associations}
        viewer_headers = generated_header_names(behavior)
        scrub = any(cloudfront_owned(n) for n in named_headers(behavior))
        lean = ("GET" in cached and behavior.trusted_keys is None and behavior.response_headers_policy is None
                and not viewer_headers and not scrub and "viewer-response" not in associations)
        function, hook = "viewer-request" in functions, "viewer-request" in associations
        answer_function = "viewer-response" in functions
        return cls(behavior=behavior, origin=spec, edge_origin=spec.to_edge_origin(),
                   store=StoreContext.for_behavior(distribution, behavior), forwarding=Forwarding.of(behavior),
                   viewer_headers=viewer_headers, scrub_owned=scrub, cached_methods=cached,
                   compress=compress_codings(behavior), hooks=MappingProxyType(associations),
                   functions=MappingProxyType(functions),
                   failover=None if group is None else group[0].to_edge_origin(),
                   failover_statuses=frozenset() if group is None else group[1],
                   plain_hits=lean and not (function or hook or answer_function),
                   lean_function=lean and function and not (hook or answer_function),
                   lean_hook=lean and hook and not (function or answer_function),
                   lean_response=lean and answer_function and not (function or hook))


MATCH_MEMO_ENTRIES = 4096
MATCH_MEMO_PATH = 256


@dataclass(frozen=True, slots=True)
class DistributionPlan:
    """The plans of a distribution's behaviors, and the selection of one by path (contract §5.1)."""

    distribution: Distribution
    behaviors: tuple[BehaviorPlan, ...]  # CacheBehaviors in match order (the default is not among them)
    default: BehaviorPlan
    # path -> plan for short paths, cleared when full: a hit path matches every pattern before its own (one regex
    # each; the corpus has distributions with 20+ behaviors), the same few paths come again and again, and viewers
    # choose the paths (hence the bounds: MATCH_MEMO_ENTRIES paths of at most MATCH_MEMO_PATH characters)
    _memo: dict[str, BehaviorPlan] = field(default_factory=dict, compare=False, repr=False)

    def match(self, path: str) -> BehaviorPlan:
        """The plan of the behavior :func:`edge.cdn.config.behaviors.match_behavior` selects for ``path``."""
        plan = self._memo.get(path)
        if plan is None:
            behavior = match_behavior(self.distribution, path)
            plan = self.default if behavior.is_default else self.behaviors[behavior.index]
            if len(path) <= MATCH_MEMO_PATH:
                remember(self._memo, path, plan, MATCH_MEMO_ENTRIES)
        return plan


def compile_distribution(distribution: Distribution, *, hooks: bool = True) -> DistributionPlan:
    """Every behavior's plan, built once when a POP loads ``distribution``."""
    return DistributionPlan(
        distribution=distribution,
        behaviors=tuple(BehaviorPlan.of(distribution, b, hooks=hooks) for b in distribution.behaviors),
        default=BehaviorPlan.of(distribution, distribution.default_behavior, hooks=hooks))
