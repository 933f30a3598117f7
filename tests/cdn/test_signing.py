"""Signed URL / cookie checks (pure): canned and custom policies, RSA and ECDSA, SHA-1 and SHA-256, each refusal, and
agreement with an independent signer (botocore's CloudFrontSigner)."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from edge.cdn.signing import (
    Refusal,
    TrustedKey,
    canned_policy,
    cf_b64decode,
    cf_b64encode,
    load_public_key,
    signed_cookies,
    signed_url,
    split_signing_params,
    verify,
)

NOW = 1_700_000_000
URL = "http://d111111abcdef8.cloudfront.net/private/a.txt?size=2"


@functools.cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def keys(**private: Any) -> dict[str, TrustedKey]:
    return {k: TrustedKey(k, v.public_key(), "group") for k, v in private.items()}


def check(signed: str, trusted: dict[str, TrustedKey], *, ip: str = "192.0.2.7", now: float = NOW,
          cookies: dict[str, str] | None = None) -> Refusal | TrustedKey:
    base, _, query = signed.partition("?")
    own, found = split_signing_params(query)
    return verify(url=base + (f"?{own}" if own else ""), query_params=found, cookies=cookies or {}, client_ip=ip,
                  now=now, keys=trusted)


def code(result: Refusal | TrustedKey) -> str:
    return result.code if isinstance(result, Refusal) else "ok"


def test_encoding_and_canned_policy_bytes() -> None:
    assert cf_b64encode(b"\xfb\xff\xfe") == "-~~-" and cf_b64decode("-~~-") == b"\xfb\xff\xfe"
    assert canned_policy("http://x/a", 5) == (b'{"Statement":[{"Resource":"http://x/a","Condition":{"DateLessThan":'
                                              b'{"AWS:EpochTime":5}}}]}')
    assert split_signing_params("a=1&Expires=2&b=3&Signature=x&Key-Pair-Id=K") == (
        "a=1&b=3", {"Expires": "2", "Signature": "x", "Key-Pair-Id": "K"})


def test_botocore_signed_urls_verify() -> None:
    """An independent implementation of the signing side (canned and custom, RSA-SHA1 as CloudFront documents)."""
    key = rsa_key()
    signer = CloudFrontSigner("K2JCJMDEHXQW5F", lambda m: key.sign(m, padding.PKCS1v15(), hashes.SHA1()))
    trusted = keys(K2JCJMDEHXQW5F=key)
    canned = signer.generate_presigned_url(URL, date_less_than=_dt(NOW + 60))
    assert code(check(canned, trusted)) == "ok"
    policy = signer.build_policy("http://d111111abcdef8.cloudfront.net/private/*", _dt(NOW + 60),
                                 date_greater_than=_dt(NOW - 60), ip_address="192.0.2.0/24")
    custom = signer.generate_presigned_url(URL, policy=policy)
    assert code(check(custom, trusted)) == "ok"
    assert code(check(custom, trusted, ip="198.51.100.1")) == "AccessDenied"  # outside the range
    assert code(check(custom.replace("/private/", "/public/"), trusted)) == "AccessDenied"  # resource


def _dt(epoch: int) -> Any:
    import datetime

    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
@pytest.mark.parametrize("sha256", [False, True])
def test_our_signer_round_trip(kind: str, sha256: bool) -> None:
    key = rsa_key() if kind == "rsa" else ec_key()
    trusted = keys(K1=key)
    url = signed_url(URL, key, "K1", NOW + 60, sha256=sha256)
    assert ("Hash-Algorithm=SHA256" in url) == sha256 and code(check(url, trusted)) == "ok"
    assert code(check(url, trusted, now=NOW + 60)) == "AccessDenied"  # DateLessThan is exclusive


def test_refusals() -> None:
    key = rsa_key()
    trusted = keys(K1=key)
    assert code(check(URL, trusted)) == "MissingKey"
    url = signed_url(URL, key, "K1", NOW + 60)
    assert code(check(url.replace("Key-Pair-Id=K1", "Key-Pair-Id=K9"), trusted)) == "InvalidKey"
    assert code(check(url.replace("Signature=", "Signature=%%%"), trusted)) == "MalformedSignature"
    assert code(check(url.replace("size=2", "size=3"), trusted)) == "AccessDenied"  # query changed after signing
    assert code(check(url.replace(f"Expires={NOW + 60}", f"Expires={NOW + 600}"), trusted)) == "AccessDenied"
    bad_policy = f"{URL}&Policy={cf_b64encode(b'{not json')}&Signature=AAAA&Key-Pair-Id=K1"
    assert code(check(bad_policy, trusted)) == "MalformedPolicy"
    later = signed_url(URL, key, "K1", NOW + 600, not_before=NOW + 300)
    assert code(check(later, trusted)) == "AccessDenied" and code(check(later, trusted, now=NOW + 301)) == "ok"


def test_cookies_and_the_url_wins() -> None:
    key = rsa_key()
    trusted = keys(K1=key)
    jar = signed_cookies("http://d111111abcdef8.cloudfront.net/private/*", key, "K1", NOW + 60)
    assert "CloudFront-Policy" in jar and code(check(URL, trusted, cookies=jar)) == "ok"
    canned = signed_cookies(URL, key, "K1", NOW + 60)
    assert "CloudFront-Expires" in canned and code(check(URL, trusted, cookies=canned)) == "ok"
    # a URL with signing parameters is checked alone: its bad signature is not rescued by good cookies
    assert code(check(f"{URL}&Expires={NOW + 60}&Signature=AAAA&Key-Pair-Id=K1", trusted, cookies=jar)) == "AccessDenied"


def test_public_keys_accepted_as_cloudfront_does() -> None:
    from cryptography.hazmat.primitives import serialization

    def pem(k: Any) -> bytes:
        return k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    assert isinstance(load_public_key(pem(rsa_key())), rsa.RSAPublicKey)
    assert isinstance(load_public_key(pem(ec_key())), ec.EllipticCurvePublicKey)
    with pytest.raises(ValueError, match="RSA 2048"):
        load_public_key(pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)))
    with pytest.raises(ValueError, match="P-256"):
        load_public_key(pem(ec.generate_private_key(ec.SECP384R1())))
