"""Checking a request's AWS Signature Version 4 against configured access keys (pure: values in, a verdict out).

How AWS authenticates a signed request (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/signature-v4-troubleshooting.html): the ``Authorization`` header
names the algorithm, the credential scope (access key id / date / region / service / ``aws4_request``), the signed
headers and the signature; the service recomputes the signature from the request and the secret key of that
access key id, and refuses a request whose ``X-Amz-Date`` is more than 5 minutes away from its clock.

The signature is recomputed with botocore's own signer (``botocore.auth.SigV4Auth``: canonical request, string
to sign, signature), the code every boto3 client signs with, never re-implemented here. The request is given to
it with only the headers the client signed, its path and query exactly as sent (the client's encoded path is
encoded once more for the canonical request, as SigV4 does for every service but S3), and its body.

Verdicts (the API shapes them per protocol, :mod:`.auth`): no ``Authorization`` header (or presigned query
parameters, which these APIs do not accept) -> ``missing``; an unusable header -> ``incomplete``; an access key id
that is not configured -> ``unknown_key``; a date outside 5 minutes -> ``expired`` (AWS's wording); a different
signature -> ``signature``.

SigV4A (``AWS4-ECDSA-P256-SHA256``, which boto3's ``cloudfront-keyvaluestore`` client uses): neither botocore nor
awscrt has a public verifier, so such a request is checked for a configured access key id and the clock skew
only (README deviation table).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

__all__ = ["MAX_SKEW", "AuthFailure", "verify"]

MAX_SKEW = dt.timedelta(minutes=5)
SIGV4 = "AWS4-HMAC-SHA256"
SIGV4A = "AWS4-ECDSA-P256-SHA256"
_FIELD = re.compile(r"(Credential|SignedHeaders|Signature)=([^,\s]*)")
_AMZ_DATE = "%Y%m%dT%H%M%SZ"

Kind = Literal["missing", "incomplete", "unknown_key", "expired", "signature"]


@dataclass(frozen=True, slots=True)
class AuthFailure:
    kind: Kind
    message: str


MISSING = AuthFailure("missing", "Missing Authentication Token")
UNKNOWN = AuthFailure("unknown_key", "The security token included in the request is invalid.")
MISMATCH = AuthFailure("signature", "The request signature we calculated does not match the signature you provided. "
                                    "Check your AWS Secret Access Key and signing method. Consult the service "
                                    "documentation for details.")


def _incomplete(detail: str) -> AuthFailure:
    return AuthFailure("incomplete", detail)


def _skew(stamp: dt.datetime, now: dt.datetime) -> AuthFailure | None:
    fmt = lambda t: t.strftime(_AMZ_DATE)  # noqa: E731
    if stamp < now - MAX_SKEW:
        return AuthFailure("expired", f"Signature expired: {fmt(stamp)} is now earlier than {fmt(now - MAX_SKEW)} "
                                      f"({fmt(now)} - 5 min.)")
    if stamp > now + MAX_SKEW:
        return AuthFailure("expired", f"Signature not yet current: {fmt(stamp)} is still later than "
                                      f"{fmt(now + MAX_SKEW)} ({fmt(now)} + 5 min.)")
    return None


def verify(method: str, raw_path: str, headers: Mapping[str, str], header_values: Mapping[str, list[str]],
           body: bytes, keys: Mapping[str, str], now: dt.datetime) -> AuthFailure | None:
    """None if the request is signed by one of ``keys`` (access key id -> secret access key), else why not.

    ``raw_path``: the path and query exactly as received; ``headers``: case-insensitive, one value per name;
    ``header_values``: lower-case name -> every value received (for the signed headers); ``now``: aware UTC."""
    auth = headers.get("Authorization")
    if not auth:
        return MISSING
    algorithm, _, rest = auth.strip().partition(" ")
    if algorithm not in (SIGV4, SIGV4A):
        return _incomplete(f"Authorization header requires the {SIGV4} algorithm, got {algorithm!r}.")
    fields = dict(_FIELD.findall(rest))
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(name):
            return _incomplete(f"Authorization header requires '{name}' parameter. Authorization={auth[:200]}")
    scope = fields["Credential"].split("/")
    if len(scope) != (5 if algorithm == SIGV4 else 4) or scope[-1] != "aws4_request":
        return _incomplete(f"Credential should be scoped to a valid region and service: {fields['Credential']!r}.")
    secret = keys.get(scope[0])
    if secret is None:
        return UNKNOWN
    amz_date = headers.get("X-Amz-Date", "")
    try:
        stamp = dt.datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=dt.UTC)
    except ValueError:
        return _incomplete("Authorization header requires existence of a valid 'X-Amz-Date' header "
                           "(YYYYMMDDTHHMMSSZ).")
    late = _skew(stamp, now)
    if late is not None:
        return late
    if algorithm == SIGV4A:
        return None  # the signature itself cannot be verified (module docstring)
    signed = fields["SignedHeaders"].split(";")
    if "host" not in signed:
        return _incomplete("'Host' must be a signed header.")
    digest = hashlib.sha256(body).hexdigest()
    claimed = headers.get("X-Amz-Content-SHA256")
    if claimed is not None and claimed != digest:
        return MISMATCH  # the signature would cover a hash that is not the body's
    host = headers.get("Host", "")
    request = AWSRequest(method=method, url=f"http://{host}{raw_path}", data=body)
    for name in signed:
        for value in header_values.get(name, ()):
            request.headers[name] = value  # appends: repeated headers are joined as SigV4 says
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(scope[0], secret), scope[3], scope[2])
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if scope[1] != amz_date[:8] or not hmac.compare_digest(expected, fields["Signature"]):
        return MISMATCH
    return None
