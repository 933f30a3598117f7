"""Signed URLs and signed cookies: CloudFront's check of a request to a behavior with ``TrustedKeyGroups`` (or legacy
``TrustedSigners``), and the signing side used by ``edgelab sign-url`` and the tests. Pure: values in, values out
(``now`` is passed in); the only library is ``cryptography``.

AWS pages: "Serve private content with signed URLs and signed cookies"
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/PrivateContent.html), "Create a signed URL using a
canned policy" (.../private-content-creating-signed-url-canned-policy.html), "... using a custom policy"
(.../private-content-creating-signed-url-custom-policy.html), "Set signed cookies using a canned/custom policy"
(.../private-content-setting-signed-cookie-canned-policy.html), "Choose between signed URLs and signed cookies"
(.../private-content-choosing-signed-urls-cookies.html), and the ``PublicKeyConfig`` API page (RSA 2048 or ECDSA
256 keys for signed URLs and cookies).

* A URL carrying any of ``Expires``, ``Policy``, ``Signature``, ``Key-Pair-Id`` is a signed URL and the cookies are
  not looked at; otherwise the ``CloudFront-*`` cookies are.
* Canned policy: ``Expires`` and the policy CloudFront rebuilds byte for byte from the URL the viewer requested
  (scheme, Host, path, the query without the signing parameters); custom policy: ``Policy`` (CloudFront's base64),
  one statement (an object or a one-item list: AWS's pages show both), ``Resource`` with ``*``/``?`` wildcards (absent:
  every URL), ``DateLessThan`` required, ``DateGreaterThan`` and ``IpAddress`` (one IPv4 CIDR) optional.
* Signature: RSA PKCS#1 v1.5 or ECDSA (DER), over SHA-1 unless ``Hash-Algorithm`` / ``CloudFront-Hash-Algorithm`` says
  ``SHA256`` (the AWS CLI's ``aws cloudfront sign --hash-algorithm``). The ECDSA encoding is not documented; DER is what
  ``cryptography`` and the AWS CLI produce.
* Answers (403, ``text/xml``): the codes and messages below are those of AWS's knowledge-center article
  "troubleshoot signed URL or signed cookie" (MissingKey, "Unknown Key") and of recorded CloudFront answers in public
  code (InvalidKey, MalformedSignature, MalformedPolicy, AccessDenied); AWS does not document them all.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

__all__ = ["COOKIE_PARAMS", "MAX_EPOCH", "SIGNING_PARAMS", "PrivateKey", "PublicKey", "Refusal", "TrustedKey",
           "canned_policy", "cf_b64decode", "cf_b64encode", "custom_policy", "load_public_key", "sign_policy",
           "signed_cookies", "signed_url", "split_signing_params", "verify"]

SIGNING_PARAMS = ("Expires", "Policy", "Signature", "Key-Pair-Id", "Hash-Algorithm")
_URL_MARKERS = frozenset(SIGNING_PARAMS[:4])
COOKIE_PARAMS = {f"CloudFront-{p}": p for p in SIGNING_PARAMS}  # cookie name -> parameter
MAX_EPOCH = 2_147_483_647

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A public key a behavior trusts: its ID (``Key-Pair-Id``), the key group (or signer account) it came from."""

    id: str
    key: PublicKey
    group: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: CloudFront's XML ``Code`` and ``Message``, and a detail for the logs."""

    code: str
    message: str
    detail: str


MISSING_KEY = ("MissingKey", "Missing Key-Pair-Id query parameter or cookie value")
UNKNOWN_KEY = ("InvalidKey", "Unknown Key")
MALFORMED_SIGNATURE = ("MalformedSignature", "Could not unencode Signature")
MALFORMED_POLICY = ("MalformedPolicy", "Malformed Policy")
ACCESS_DENIED = ("AccessDenied", "Access denied")


def _refuse(kind: tuple[str, str], detail: str) -> Refusal:
    return Refusal(kind[0], kind[1], detail)


def cf_b64encode(data: bytes) -> str:
    """CloudFront's URL-safe base64: standard base64 with ``+ = /`` replaced by ``- _ ~``."""
    return base64.b64encode(data).decode("ascii").translate(str.maketrans("+=/", "-_~"))


def cf_b64decode(text: str) -> bytes:
    """The inverse of :func:`cf_b64encode` (raises ``ValueError`` on anything else)."""
    std = text.translate(str.maketrans("-_~", "+=/"))
    try:
        return base64.b64decode(std, validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None


def load_public_key(pem: str | bytes) -> PublicKey:
    """An RSA (2048 bits or more) or ECDSA P-256 public key from PEM (``ValueError`` naming what is wrong)."""
    data = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_public_key(data)
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ValueError(f"an RSA key of {key.key_size} bits: CloudFront takes RSA 2048")
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name != "secp256r1":
            raise ValueError(f"an ECDSA key on {key.curve.name}: CloudFront takes ECDSA 256 (P-256)")
        return key
    raise ValueError("neither RSA nor ECDSA: CloudFront takes RSA 2048 or ECDSA 256 keys")


def canned_policy(resource: str, expires: int) -> bytes:
    """The canned policy CloudFront rebuilds: no whitespace, this key order."""
    return (f'{{"Statement":[{{"Resource":"{resource}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}'
            f"]}}").encode()


def split_signing_params(querystring: str) -> tuple[str, dict[str, str]]:
    """``querystring`` without the signing parameters (the viewer's own, in order) and the signing parameters found
    (values as sent; the first of a repeated name wins)."""
    own: list[str] = []
    found: dict[str, str] = {}
    for part in querystring.split("&") if querystring else ():
        name, _, value = part.partition("=")
        if name in SIGNING_PARAMS:
            found.setdefault(name, value)
        else:
            own.append(part)
    return "&".join(own), found


def _hash(name: str) -> hashes.HashAlgorithm | None:
    return {"": hashes.SHA1(), "SHA1": hashes.SHA1(), "SHA256": hashes.SHA256()}.get(name.upper())


def _check_signature(key: PublicKey, signature: bytes, policy: bytes, algorithm: hashes.HashAlgorithm) -> bool:
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, policy, padding.PKCS1v15(), algorithm)
        else:
            key.verify(signature, policy, ec.ECDSA(algorithm))
    except InvalidSignature:
        return False
    return True


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def _epoch(cond: Mapping[str, Any], name: str) -> int | None:
    v = cond.get(name)
    if v is None:
        return None
    t = v.get("AWS:EpochTime") if isinstance(v, Mapping) else None
    if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t <= MAX_EPOCH:
        raise ValueError(f"{name} needs an AWS:EpochTime of integer seconds")
    return t


def _statement(policy: bytes) -> tuple[str | None, Mapping[str, Any]]:
    doc = json.loads(policy)
    st = doc.get("Statement") if isinstance(doc, Mapping) else None
    if isinstance(st, list):
        if len(st) != 1:
            raise ValueError("a policy has exactly one statement")
        st = st[0]
    if not isinstance(st, Mapping) or not isinstance(st.get("Condition"), Mapping):
        raise ValueError("Statement.Condition is required")
    resource = st.get("Resource")
    if resource is not None and not isinstance(resource, str):
        raise ValueError("Resource must be a string")
    return resource, st["Condition"]


def verify(*, url: str, query_params: Mapping[str, str], cookies: Mapping[str, str], client_ip: str, now: float,
           keys: Mapping[str, TrustedKey]) -> Refusal | TrustedKey:
    """Check a request to a behavior that trusts ``keys``: ``url`` is the URL the viewer asked for without the signing
    parameters (``scheme://host/path[?own query]``), ``query_params`` the signing parameters of its query string
    (:func:`split_signing_params`), ``cookies`` its cookies. Returns the key that signed it, or the refusal."""
    if _URL_MARKERS & query_params.keys():
        params, where = dict(query_params), "URL"
    else:
        params = {p: cookies[c] for c, p in COOKIE_PARAMS.items() if c in cookies}
        where = "cookies"
    key_id = params.get("Key-Pair-Id", "")
    if not key_id:
        return _refuse(MISSING_KEY, f"no Key-Pair-Id in the {where}")
    trusted = keys.get(key_id)
    if trusted is None:
        return _refuse(UNKNOWN_KEY, f"key {key_id!r} is not in a trusted key group of the behavior")
    algorithm = _hash(params.get("Hash-Algorithm", ""))
    if algorithm is None:
        return _refuse(ACCESS_DENIED, f"unsupported Hash-Algorithm {params['Hash-Algorithm']!r} (SHA1 or SHA256)")
    try:
        signature = cf_b64decode(params.get("Signature", ""))
    except ValueError:
        signature = b""
    if not signature:
        return _refuse(MALFORMED_SIGNATURE, f"the Signature of the {where} is missing or not CloudFront's base64")
    if "Policy" in params:
        try:
            policy = cf_b64decode(params["Policy"])
            resource, cond = _statement(policy)
            not_after = _epoch(cond, "DateLessThan")
            not_before = _epoch(cond, "DateGreaterThan")
            ip = cond.get("IpAddress")
            source = ip.get("AWS:SourceIp") if isinstance(ip, Mapping) else None
            if ip is not None and not isinstance(source, str):
                raise ValueError("IpAddress needs AWS:SourceIp")
            network = ipaddress.IPv4Network(source, strict=False) if source is not None else None
        except ValueError as exc:
            return _refuse(MALFORMED_POLICY, f"custom policy: {exc}")
        if not_after is None:
            return _refuse(MALFORMED_POLICY, "custom policy: DateLessThan is required")
    else:
        try:
            not_after = int(params.get("Expires", ""))
        except ValueError:
            return _refuse(ACCESS_DENIED, f"canned policy without a valid Expires in the {where}")
        resource, not_before, network = url, None, None
        policy = canned_policy(url, not_after)
    if not _check_signature(trusted.key, signature, policy, algorithm):
        return _refuse(ACCESS_DENIED, f"the signature does not match the policy (key {key_id})")
    if now >= not_after:
        return _refuse(ACCESS_DENIED, f"expired at {not_after} (now {int(now)})")
    if not_before is not None and now <= not_before:
        return _refuse(ACCESS_DENIED, f"not valid before {not_before} (now {int(now)})")
    if resource is not None and resource != "*" and not _wildcard(resource).fullmatch(url):
        return _refuse(ACCESS_DENIED, f"the policy's Resource {resource!r} does not match {url!r}")
    if network is not None:
        try:
            inside = ipaddress.ip_address(client_ip) in network
        except ValueError:
            inside = False
        if not inside:
            return _refuse(ACCESS_DENIED, f"viewer {client_ip} is outside the policy's {network}")
    return trusted


# --- signing (the CLI helper and tests) -----------------------------------------------------------------------------


def sign_policy(private_key: PrivateKey, policy: bytes, *, sha256: bool = False) -> str:
    """The ``Signature`` value for ``policy``."""
    algorithm = hashes.SHA256() if sha256 else hashes.SHA1()
    if isinstance(private_key, rsa.RSAPrivateKey):
        sig = private_key.sign(policy, padding.PKCS1v15(), algorithm)
    else:
        sig = private_key.sign(policy, ec.ECDSA(algorithm))
    return cf_b64encode(sig)


def custom_policy(resource: str | None, expires: int, *, not_before: int | None = None,
                  ip_range: str | None = None) -> bytes:
    """A custom policy (compact JSON, one statement in a list as the SDKs write it)."""
    cond: dict[str, Any] = {"DateLessThan": {"AWS:EpochTime": expires}}
    if not_before is not None:
        cond["DateGreaterThan"] = {"AWS:EpochTime": not_before}
    if ip_range is not None:
        cond["IpAddress"] = {"AWS:SourceIp": ip_range}
    st: dict[str, Any] = {"Condition": cond} if resource is None else {"Resource": resource, "Condition": cond}
    return json.dumps({"Statement": [st]}, separators=(",", ":")).encode()


def _params(private_key: PrivateKey, key_id: str, resource: str, expires: int, *, policy_resource: str | None,
            not_before: int | None, ip_range: str | None, sha256: bool) -> list[tuple[str, str]]:
    if policy_resource is None and not_before is None and ip_range is None:
        out = [("Expires", str(expires)),
               ("Signature", sign_policy(private_key, canned_policy(resource, expires), sha256=sha256))]
    else:
        policy = custom_policy(policy_resource if policy_resource is not None else resource, expires,
                               not_before=not_before, ip_range=ip_range)
        out = [("Policy", cf_b64encode(policy)), ("Signature", sign_policy(private_key, policy, sha256=sha256))]
    out.append(("Key-Pair-Id", key_id))
    if sha256:
        out.append(("Hash-Algorithm", "SHA256"))
    return out


def signed_url(url: str, private_key: PrivateKey, key_id: str, expires: int, *, policy_resource: str | None = None,
               not_before: int | None = None, ip_range: str | None = None, sha256: bool = False) -> str:
    """``url`` with the signing parameters appended (a canned policy unless a custom condition or resource is
    given, as ``aws cloudfront sign`` decides)."""
    params = _params(private_key, key_id, url, expires, policy_resource=policy_resource, not_before=not_before,
                     ip_range=ip_range, sha256=sha256)
    sep = "&" if "?" in url else "?"
    return url + sep + "&".join(f"{k}={quote(v, safe='-_~')}" for k, v in params)


def signed_cookies(resource: str, private_key: PrivateKey, key_id: str, expires: int, *,
                   not_before: int | None = None, ip_range: str | None = None,
                   sha256: bool = False) -> dict[str, str]:
    """The ``CloudFront-*`` cookies for ``resource`` (canned when it has no wildcard and no other condition)."""
    custom = "*" in resource or not_before is not None or ip_range is not None
    params = _params(private_key, key_id, resource, expires, policy_resource=resource if custom else None,
                     not_before=not_before, ip_range=ip_range, sha256=sha256)
    return {f"CloudFront-{k}": v for k, v in params}
