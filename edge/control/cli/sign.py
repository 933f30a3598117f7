"""``edgelab sign-url`` and ``edgelab sign-cookies``: sign a URL or issue signed cookies for testing a behavior with
``TrustedKeyGroups`` (the same choices as ``aws cloudfront sign``: a canned policy unless ``--policy-resource``,
``--date-greater-than`` or ``--ip-address`` asks for a custom one; SHA-1 unless ``--hash-algorithm SHA256``)::

    edgelab sign-url http://127.0.0.1:8081/private/a.txt --key-pair-id K2JCJMDEHXQW5F --private-key key.pem \\
        --expires-in 3600
    edgelab sign-cookies 'http://127.0.0.1:8081/private/*' --key-pair-id K2JCJMDEHXQW5F --private-key key.pem

No stack is needed: the keys are files, the output goes to stdout (the URL; or one ``Set-Cookie`` line per cookie
and a ``Cookie:`` header line for curl).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from edge.cdn.signing import MAX_EPOCH, PrivateKey, signed_cookies, signed_url

__all__ = ["add_sign_commands", "run_sign_command"]


def add_sign_commands(sub: argparse._SubParsersAction) -> None:
    for name, what in (("sign-url", "the URL to sign (absolute http:// or https://, without signing parameters)"),
                       ("sign-cookies", "the resource the cookies grant (a URL; * and ? wildcards make a custom "
                                        "policy)")):
        p = sub.add_parser(name, help=f"{name.replace('-', ' ')} for a behavior with TrustedKeyGroups (no stack needed)")
        p.add_argument("url", help=what)
        p.add_argument("--key-pair-id", required=True, help="the public key's ID ([public_keys.<id>] in the settings)")
        p.add_argument("--private-key", required=True, type=Path, help="PEM file of the RSA 2048 or ECDSA P-256 key")
        when = p.add_mutually_exclusive_group()
        when.add_argument("--expires-in", type=int, default=3600, help="seconds from now (default 3600)")
        when.add_argument("--date-less-than", type=int, default=None, help="expiry as epoch seconds")
        p.add_argument("--date-greater-than", type=int, default=None, help="not valid before (epoch seconds)")
        p.add_argument("--ip-address", default=None, help="one IPv4 address or CIDR allowed")
        p.add_argument("--hash-algorithm", choices=("SHA1", "SHA256"), default="SHA1",
                       help="signature digest: SHA1 (the default, as CloudFront) or SHA256 (its key group option)")
        if name == "sign-url":
            p.add_argument("--policy-resource", default=None, help="a custom policy's Resource (wildcards allowed)")


def _private_key(path: Path) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SystemExit(f"edgelab: cannot read the private key {path}: {exc}") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise SystemExit(f"edgelab: {path} is neither an RSA nor an ECDSA private key")
    return key


def run_sign_command(args: argparse.Namespace) -> int:
    if not args.url.startswith(("http://", "https://")):
        raise SystemExit("edgelab: the URL must start with http:// or https://")
    expires = args.date_less_than if args.date_less_than is not None else int(time.time()) + args.expires_in
    if not 0 < expires <= MAX_EPOCH:
        raise SystemExit(f"edgelab: the expiry must be epoch seconds up to {MAX_EPOCH}")
    key = _private_key(args.private_key)
    sha256 = args.hash_algorithm == "SHA256"
    if args.command == "sign-url":
        print(signed_url(args.url, key, args.key_pair_id, expires, policy_resource=args.policy_resource,
                         not_before=args.date_greater_than, ip_range=args.ip_address, sha256=sha256))
        return 0
    cookies = signed_cookies(args.url, key, args.key_pair_id, expires, not_before=args.date_greater_than,
                             ip_range=args.ip_address, sha256=sha256)
    for k, v in cookies.items():
        sys.stdout.write(f"Set-Cookie: {k}={v}; Path=/; Secure; HttpOnly\n")
    sys.stdout.write("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()) + "\n")
    return 0
