"""Step 1b, signed access: a behavior with ``TrustedKeyGroups`` (or legacy ``TrustedSigners``) serves only requests
with a valid signed URL or signed cookies (:mod:`edge.cdn.signing` does the check).

Runs after the behavior is chosen and the geo check, before any viewer function ("Serve private content with signed
URLs and signed cookies", https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/PrivateContent.html).
The URL checked is the one the viewer asked for: its scheme (``http`` or ``https``, the POP's two listeners) +
``://`` + its ``Host`` + path + its own query parameters. A refusal is CloudFront's 403 with its XML body (:class:`edge.cdn.errors.SignatureRefused`).

A request that passes loses its signing parameters (``Expires``, ``Policy``, ``Signature``, ``Key-Pair-Id``,
``Hash-Algorithm``) from the query string before anything else sees it: they are kept out of the cache key and of
what is forwarded ("Cache content based on query string parameters": CloudFront removes them before forwarding
when the behavior trusts signers,
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/QueryStringParameters.html; AWS does not say
whether they are part of the cache key: edgelab keeps them out, so every signed URL of an object shares one entry).
Functions therefore see the query without them. The ``CloudFront-*`` cookies follow the behavior's cookie rules.
"""

from __future__ import annotations

from edge.cdn.errors import SignatureRefused
from edge.cdn.models import header_all, header_get
from edge.cdn.signing import Refusal, split_signing_params, verify
from edge.cdn.steps import Exchange
from edge.cdn.steps.context import PopContext


def cookies(headers: list[tuple[str, str]]) -> dict[str, str]:
    """The request's cookies by name (every ``Cookie`` header; the first of a repeated name wins)."""
    out: dict[str, str] = {}
    for line in header_all(headers, "cookie"):
        for part in line.split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name:
                out.setdefault(name, value)
    return out


def check(ctx: PopContext, ex: Exchange) -> None:
    """Verify the request when its behavior trusts keys (raises :class:`SignatureRefused`); strip the signing
    parameters from a request that passes."""
    assert ex.plan is not None
    keys = ex.plan.behavior.trusted_keys
    if keys is None:
        return
    req = ex.request
    own, found = split_signing_params(req.querystring)
    host = header_get(req.headers, "host") or ctx.distribution.domain_name
    url = f"{req.scheme}://{host}{req.uri}" + (f"?{own}" if own else "")
    verdict = verify(url=url, query_params=found, cookies=cookies(req.headers), client_ip=req.client_ip,
                     now=ctx.clock(), keys=keys)
    if isinstance(verdict, Refusal):
        ex.trace.append(f"signed:{verdict.code}")
        raise SignatureRefused(verdict.code, verdict.message, verdict.detail)
    ex.trace.append(f"signed:{verdict.id}")
    req.querystring = own
